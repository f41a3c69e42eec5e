import shoal


@shoal.stream.processor
def square(x):
    return x * x
