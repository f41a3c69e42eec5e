import shoal


@shoal.stream.processor
def one(x):
    return x


@shoal.stream.processor
def two(x):
    return x
