"""A result of x bytes (a string of x letters); an input line is echoed back with its length."""


def process(x):
    if isinstance(x, int):
        return "y" * x
    return len(x)
