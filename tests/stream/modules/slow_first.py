import time


def process(x):
    if x == 0:
        time.sleep(1.0)
    return x
