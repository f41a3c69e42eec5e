import os


def process(x):
    if x == 5:
        os._exit(3)   # this item kills every volunteer that takes it
    return -x
