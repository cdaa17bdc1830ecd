"""Gathering the next batch in the background while the current step trains.

Gathering a batch (copying a few hundred scattered rows of the training set)
takes about a tenth of a training step. NumPy and TensorFlow both release
Python's lock while they work, so a thread can copy the next batch while the
session runs the current one.
"""

import queue
import threading


def prefetch(batches, depth=2):
    """Yields from `batches` while a background thread prepares the next ones.

    Args:
        batches: any iterator, such as `data_helpers.gen_batch(...)`.
        depth: how many batches to prepare ahead.

    Yields:
        The items of `batches`, in order; an error raised by `batches` is
        raised here, in the consumer's thread.
    """
    ready = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = object()

    def produce():
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            ready.put(finished)
        except Exception as error:  # noqa: BLE001 (handed to the consumer)
            ready.put(error)

    threading.Thread(target=produce, daemon=True).start()
    try:
        while True:
            item = ready.get()
            if item is finished:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()  # the consumer stopped early: let the thread end
