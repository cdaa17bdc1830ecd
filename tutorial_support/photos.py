"""Photos for `restore_model.py --image`: opened safely, prepared like CIFAR-10 images.

Only PNG and JPEG are opened (Pillow's other readers, EPS among them, which
runs Ghostscript, are never handed a file from the web), a picture's size is
read from its header before it is decoded, a file whose data cannot hold the
pixels its header claims is refused (Pillow would fill them in without a
word), and the run's mean image is mapped from disk, never unpickled.
"""

import os
import struct
import zlib

import numpy as np

from tutorial_support.cifar10_files import IMAGE_SIZE, IMAGE_VALUES
from tutorial_support.errors import DataError, UserError

MOST_PIXELS = 64_000_000  # a 64-megapixel photo; larger ones would take gigabytes
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, ...
# Adam7 interlacing: each pass's first column and row, and its steps across and down
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                (1, 0, 2, 2), (0, 1, 1, 2))


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
                check_png_is_whole(path)
            else:
                check_jpeg_holds_its_blocks(path)
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


def check_png_is_whole(path):
    """Fails when a PNG's image data holds fewer pixels than its header claims.

    Pillow fills the rows a PNG's data stream does not hold with zeros,
    without a word, when the stream itself ends properly: such a file would be
    classified as if it were whole. The data is decompressed here, in pieces
    and never beyond what the header claims, and its length compared.

    Raises:
        DataError: naming the file, the size its header claims, and how much
            of it is there.
    """
    with open(path, 'rb') as f:
        if f.read(8) != PNG_SIGNATURE:
            raise DataError(f'{path} is not a PNG file, though it looked like one.')
        header = None
        decompressor, found = zlib.decompressobj(), 0
        while True:
            length_and_type = f.read(8)
            if len(length_and_type) < 8:
                break
            length, kind = struct.unpack('>I4s', length_and_type)
            data = f.read(length)
            f.read(4)  # the CRC, checked by Pillow
            if kind == b'IHDR' and len(data) >= 13:
                header = struct.unpack('>IIBBBBB', data[:13])
            elif kind == b'IDAT' and header is not None:
                found += _decompressed_length(decompressor, data, png_data_size(*header) - found)
            elif kind == b'IEND':
                break
    if header is None:
        raise DataError(f'{path} has no PNG header (IHDR): it is damaged.')
    expected = png_data_size(*header)
    if found < expected:
        raise DataError(
            f'{path} is damaged or cut short: its header says {header[0]} x {header[1]} '
            f'pixels, but its image data holds only {found * 100 // expected}% of them. It is not '
            'classified; save or download it again.')


def check_jpeg_holds_its_blocks(path):
    """Fails when a JPEG's image data is too short for the pixels its header claims.

    When a JPEG's data ends early but properly (its end marker right after
    the cut), libjpeg fills the missing blocks with one flat colour, without
    an error. Every 8 x 8 block of every colour takes at least one bit of
    Huffman-coded data (its first DC code), so data shorter than one bit a
    block cannot hold the picture its header (SOF) describes.

    Raises:
        DataError: naming the file and the size its header claims.
    """
    with open(path, 'rb') as f:
        data = f.read()
    size, blocks, coded_bytes, position = None, 0, 0, 2  # after the start marker, FF D8
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        length = struct.unpack('>H', data[position + 2:position + 4])[0]
        segment = data[position + 4:position + 2 + length]
        position += 2 + length
        if marker in (0xC0, 0xC1, 0xC2) and len(segment) >= 6:  # Huffman-coded frame
            height, width, components = struct.unpack('>HHB', segment[1:6])
            sampling = [(factors >> 4, factors & 15)
                        for factors in segment[7:6 + 3 * components:3]]
            if not sampling or height == 0 or not all(h and v for h, v in sampling):
                return  # a height given later (DNL), or a header Pillow refuses anyway
            size = width, height
            most_across = max(h for h, _ in sampling)
            most_down = max(v for _, v in sampling)
            blocks = sum(_blocks(width, h, most_across) * _blocks(height, v, most_down)
                         for h, v in sampling)
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return  # lossless or arithmetic coding: no such bound
        elif marker == 0xDA:  # a scan: its coded data runs to the next marker (not RSTn)
            end = position
            while True:
                end = data.find(b'\xff', end)
                if end < 0 or end + 1 >= len(data):
                    end = len(data)
                    break
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
            coded_bytes += end - position
            position = end
    if size and coded_bytes * 8 < blocks:
        raise DataError(
            f'{path} is damaged or cut short: its header says {size[0]} x {size[1]} pixels, '
            f'but its image data could hold at most {coded_bytes * 800 // blocks}% of them. '
            'It is not classified; save or download it again.')


def _blocks(pixels, factor, largest_factor):
    """How many 8-pixel blocks a colour of a JPEG has along one side (subsampled by factor)."""
    samples = -(-pixels * factor // largest_factor)  # rounded up
    return -(-samples // 8)


def _decompressed_length(decompressor, data, most):
    """How many bytes `data` decompresses to, counting at most `most` (pieces of 1 MB)."""
    found = 0
    while data and found < most:
        piece = decompressor.decompress(data, min(most - found, 1 << 20))
        found += len(piece)
        data = decompressor.unconsumed_tail
        if not piece:
            break
    return found


def png_data_size(width, height, bit_depth, colour_type, compression, filters, interlace):
    """The length of a PNG's decompressed image data, from its header (IHDR).

    Each row is a filter byte and its pixels' bits; an interlaced (Adam7) PNG
    stores seven smaller images one after the other.
    """
    bits_per_pixel = PNG_CHANNELS.get(colour_type, 4) * bit_depth
    passes = ADAM7_PASSES if interlace else ((0, 0, 1, 1),)
    size = 0
    for first_column, first_row, across, down in passes:
        columns = (width - first_column + across - 1) // across
        rows = (height - first_row + down - 1) // down
        if columns > 0 and rows > 0:
            size += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return size


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
