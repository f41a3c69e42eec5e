import asyncio


async def process(x):
    await asyncio.sleep(0.001)
    if x < 0:
        raise ValueError("negative")
    return [x, x]
