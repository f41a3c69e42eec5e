"""Returns its value after a pseudo-random delay (0-8 ms) that depends on the value."""
import random
import time


def process(x):
    time.sleep(random.Random(x).random() * 0.008)
    return x
