"""A klyng-style master/worker program: rank 0 hands out work items on demand under string
subjects, the workers answer, and the master checks every result. Any number of ranks (on one
rank the master does the work itself).
"""

import shoal

ITEMS = 60


def work(item):
    return sum(i * i for i in range(item * 100))


def main():
    rank, size = shoal.rank(), shoal.size()
    if rank == 0:
        results = {}
        if size == 1:
            results = {item: work(item) for item in range(ITEMS)}
        else:
            pending = list(range(ITEMS))
            busy = 0
            # Prime every worker, then hand out one item per answer.
            for worker in range(1, size):
                if pending:
                    shoal.send(pending.pop(0), worker, tag="work")
                    busy += 1
            while busy:
                worker, item, value = shoal.recv(source=shoal.ANY_SOURCE, tag="result")
                assert item not in results, f"item {item} answered twice"
                results[item] = (value, worker)
                busy -= 1
                if pending:
                    shoal.send(pending.pop(0), worker, tag="work")
                    busy += 1
            for worker in range(1, size):
                shoal.send(None, worker, tag="stop")
            # Every worker says how many items it did; together they did them all.
            done = [shoal.recv(source=w, tag="count") for w in range(1, size)]
            assert sum(done) == ITEMS, done
            for _, worker in results.values():
                assert done[worker - 1] > 0, f"rank {worker} answered but counted no items"
            results = {item: value for item, (value, _) in results.items()}
        assert sorted(results) == list(range(ITEMS)), sorted(results)
        for item, value in results.items():
            assert value == work(item), (item, value)
        print("klyng_work_queue ok", flush=True)
    else:
        count = 0
        while True:
            # Either subject may come next: take whatever rank 0 sends, then look at it.
            item = shoal.recv(source=0)
            if item is None:
                break
            shoal.send((rank, item, work(item)), 0, tag="result")
            count += 1
        shoal.send(count, 0, tag="count")
    shoal.end()


shoal.init(main)
