"""A CPU-heavy example, after the raytracer Pando ran on its volunteers: each item is one
row of a 160 x 120 image of three spheres, the result is that row's pixels as text in the
plain PPM format, so the output of the stream, after a header, is the image.

    (printf 'P3\\n160 120\\n255\\n'; seq 0 119 | shoal stream examples/stream/raytracer.py \\
        --stdin) > image.ppm

Pure Python, standard library only: it runs the same on local processes, machines and in
browsers (Pyodide), and gives the same pixels everywhere (arithmetic and square roots only,
which IEEE 754 rounds the same on every machine).
"""

import math

import shoal

WIDTH, HEIGHT = 160, 120
# (centre x, y, z), radius, colour (r, g, b in 0..1), shininess
SPHERES = [((0.0, -0.4, 3.0), 0.6, (0.9, 0.2, 0.2), 30),
           ((-1.1, 0.1, 4.0), 0.7, (0.2, 0.6, 0.9), 10),
           ((1.2, 0.3, 3.6), 0.5, (0.3, 0.9, 0.3), 60),
           ((0.0, -5001.0, 0.0), 5000.0, (0.8, 0.8, 0.7), 0)]   # the floor
LIGHT = (-3.0, 4.0, -1.0)
AMBIENT = 0.12


def sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def norm(a):
    length = math.sqrt(dot(a, a))
    return (a[0] / length, a[1] / length, a[2] / length)


def hit(origin, direction):
    """The nearest sphere the ray meets, and where: (distance, sphere) or None."""
    nearest = None
    for sphere in SPHERES:
        centre, radius = sphere[0], sphere[1]
        oc = sub(origin, centre)
        b = dot(oc, direction)
        c = dot(oc, oc) - radius * radius
        disc = b * b - c
        if disc < 0:
            continue
        root = math.sqrt(disc)
        t = -b - root if -b - root > 1e-4 else -b + root
        if t > 1e-4 and (nearest is None or t < nearest[0]):
            nearest = (t, sphere)
    return nearest


def shade(origin, direction):
    found = hit(origin, direction)
    if found is None:   # the sky, lighter towards the top
        up = 0.5 * (direction[1] + 1.0)
        return (0.5 + 0.3 * up, 0.7 + 0.2 * up, 1.0)
    t, (centre, _radius, colour, shininess) = found
    point = (origin[0] + t * direction[0], origin[1] + t * direction[1],
             origin[2] + t * direction[2])
    normal = norm(sub(point, centre))
    to_light = norm(sub(LIGHT, point))
    light = AMBIENT
    if hit(point, to_light) is None:   # not in a shadow
        light += max(0.0, dot(normal, to_light))
    specular = 0.0
    if shininess:
        reflected = sub(to_light, tuple(2 * dot(to_light, normal) * n for n in normal))
        base = max(0.0, dot(reflected, direction))
        specular = 1.0
        for _ in range(shininess):   # base ** shininess, in plain multiplications
            specular *= base
    return tuple(min(1.0, c * light + specular) for c in colour)


def row(y):
    pixels = []
    for x in range(WIDTH):
        direction = norm(((x - WIDTH / 2) / HEIGHT, (HEIGHT / 2 - y) / HEIGHT, 1.0))
        pixels.extend(int(255 * c + 0.5) for c in shade((0.0, 0.0, 0.0), direction))
    return pixels


@shoal.stream.processor
def render(y):
    if not isinstance(y, int) or not 0 <= y < HEIGHT:
        raise ValueError(f"a row number from 0 to {HEIGHT - 1}, not {y!r}")
    pixels = row(y)
    shoal.report(items=WIDTH, units="rays")
    return " ".join(map(str, pixels))
