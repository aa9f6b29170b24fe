"""Streams `chunks` lines (default 16) of `size` bytes each (default 64), produced one at a time."""


class Model:
    def predict(self, model_input):
        chunks = int(model_input.get("chunks", 16))
        size = max(1, int(model_input.get("size", 64)))

        def stream():
            for i in range(chunks):
                yield (f"{i:06d} " + "x" * size)[:size] + "\n"

        return stream()
