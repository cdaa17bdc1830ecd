"""Photos for `restore_model.py --image`: opened safely, prepared like CIFAR-10 images.

Only PNG and JPEG are opened (Pillow's other readers, EPS among them, which
runs Ghostscript, are never handed a file from the web), a picture's size is
read from its header before it is decoded, a file whose data cannot hold the
pixels its header claims is refused (`damaged_images`: Pillow would fill them
in without a word), and the run's mean image is mapped from disk, never unpickled.
"""

import os

import numpy as np

from tutorial_support import damaged_images
from tutorial_support.cifar10_files import IMAGE_SIZE, IMAGE_VALUES
from tutorial_support.errors import DataError, UserError

MOST_PIXELS = 64_000_000  # a 64-megapixel photo; larger ones would take gigabytes


def load_image(path):
    """Reads a PNG or JPEG of any size and prepares it like a CIFAR-10 image.

    CIFAR-10's images are whole photos scaled down to 32 x 32, objects roughly
    centred; so the picture's central square is scaled down to 32 x 32 with
    an anti-aliasing filter, and the result laid out as a CIFAR-10 row.

    Args:
        path: the image file.

    Returns:
        float32 array of 3,072 pixel values, channel-major (before the mean is
        subtracted).

    Raises:
        DataError: the file is missing, empty, too large, damaged or cut
            short (its header claims more pixels than it holds), or not an
            image. (Pillow's LOAD_TRUNCATED_IMAGES stays off: a cut-off file
            is refused, never classified with made-up pixels.)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # only for own images

    if not os.path.isfile(path):
        raise DataError(f'{path} does not exist or is not a file.')
    if os.path.getsize(path) == 0:
        raise DataError(f'{path} is empty: it holds no image.')
    try:
        with Image.open(path, formats=('PNG', 'JPEG')) as picture:
            if picture.width * picture.height > MOST_PIXELS:
                raise DataError(f'{path} is {picture.width} x {picture.height} pixels; photos '
                                'of up to 64 megapixels are read. Scale it down first.')
            if picture.format == 'PNG':  # data that ends early would decode as black
                damaged_images.check_png_is_whole(path)
            else:
                damaged_images.check_jpeg_is_whole(path)
            picture.draft('RGB', (8 * IMAGE_SIZE, 8 * IMAGE_SIZE))  # JPEG: decode smaller
            picture = ImageOps.exif_transpose(picture)  # phone photos: upright
            if picture.mode.startswith('I'):  # 16- or 32-bit grey: scale to 8 bits
                brightest = max(picture.getextrema()[1], 1)
                scale = 255 / brightest
                picture = picture.point(lambda value: value * scale + 0.5).convert('L')
            picture = picture.convert('RGB')  # decodes it: a cut-off file fails here
    except UnidentifiedImageError:
        raise DataError(f'{path} is not a PNG or JPEG image; only these two are read. Save '
                        'it as PNG or JPEG first.') from None
    except DataError:
        raise
    except Image.DecompressionBombError as error:
        raise DataError(f'{path} is far too large ({error}); photos of up to 64 megapixels '
                        'are read. Scale it down first.') from None
    except Exception as error:  # noqa: BLE001 (a damaged file makes a decoder raise nearly anything)
        raise DataError(
            f'{path} is not an image that can be read (PNG or JPEG), it is damaged or cut '
            f'short ({type(error).__name__}: {error}). Save or download it again.') from None
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    picture = picture.crop((left, top, left + side, top + side))
    picture = picture.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    pixels = np.asarray(picture, dtype=np.float32)  # 32 x 32 x 3
    return pixels.transpose(2, 0, 1).reshape(IMAGE_VALUES)


def read_mean_image(path):
    """Reads a run's `mean_image.npy`: 3,072 float32 values.

    The file is mapped, not read, so a damaged header cannot ask for
    terabytes; and it is never unpickled, so it cannot run code.

    Raises:
        UserError: the file is damaged, empty, or not a mean image.
    """
    try:
        mean_image = np.load(path, mmap_mode='r', allow_pickle=False)
        return mean_image.astype(np.float32).reshape(IMAGE_VALUES)
    except (OSError, ValueError, EOFError, AttributeError) as error:  # damaged, empty, npz
        raise UserError(
            f'{path} cannot be read as the mean image of the run ({error}). Delete '
            'it: the mean is then taken from the training data (--data_dir).') from None
