def process(x):
    if x % 10 == 3:
        raise ZeroDivisionError(f"no luck with {x}")
    return x + 1
