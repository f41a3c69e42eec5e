import shoal.stream


@shoal.stream.processor
def shout(value):
    if isinstance(value, dict):
        return {key: str(item).upper() for key, item in value.items()}
    return str(value).upper() + "!"
