"""Image files whose data cannot hold the picture their header describes.

A PNG or JPEG cut short, whose data still ends properly (the PNG's stream
closed, the JPEG's end marker after the cut), decodes without an error:
Pillow and libjpeg fill in the missing pixels without a word, and the file
would be classified as if it were whole. These checks find such files
before `photos.load_image` hands them to the network.
"""

import io
import struct
import zlib
from collections import namedtuple

import numpy as np

from tutorial_support.errors import DataError

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, ...
# Adam7 interlacing: each pass's first column and row, and its steps across and down
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                (1, 0, 2, 2), (0, 1, 1, 2))
LARGE_PHOTO = 16_000_000  # pixels: larger JPEGs are checked at half size
# A JPEG's frame (SOF) and scans: its size, each colour's (across, down)
# sampling factors, whether it is baseline (sequential), its 8 x 8 blocks,
# the bytes of coded data, where the last scan's data ends, and (progressive)
# how many of its colours' 64 coefficients the scans bring to full precision
JpegLayout = namedtuple('JpegLayout', 'size sampling sequential blocks coded_bytes scan_end '
                                      'coefficients_sent coefficients')


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


def check_jpeg_is_whole(path):
    """Fails when a JPEG's image data ends before its picture does.

    Raises:
        DataError: naming the file and what is missing.
    """
    with open(path, 'rb') as f:
        data = f.read()
    layout = jpeg_layout(data)
    if layout is None:
        return  # lossless or arithmetic coding, or a header Pillow refuses anyway
    check_jpeg_holds_its_blocks(path, layout)
    if layout.sequential:
        check_jpeg_data_ends_with_its_last_blocks(path, data, layout)
    else:
        check_jpeg_has_all_its_passes(path, layout)


def check_jpeg_holds_its_blocks(path, layout):
    """Fails when a JPEG's coded data is too short for the pixels its header claims.

    Every 8 x 8 block of every colour takes at least one bit of
    Huffman-coded data (its first DC code), so data shorter than one bit a
    block cannot hold the picture its header (SOF) describes.
    """
    if layout.coded_bytes * 8 < layout.blocks:
        raise DataError(
            f'{path} is damaged or cut short: its header says {layout.size[0]} x '
            f'{layout.size[1]} pixels, but its image data could hold at most '
            f'{layout.coded_bytes * 800 // layout.blocks}% of them. It is not classified; '
            'save or download it again.')


def check_jpeg_data_ends_with_its_last_blocks(path, data, layout):
    """Fails when a baseline JPEG's data runs out above its last rows of blocks.

    A baseline JPEG codes its blocks in order, row after row, so the last
    bytes of a whole file's data hold its last blocks. The file is decoded
    twice: as it is, and with the last byte of its data left out (at full
    size: at 1/8 only the blocks' mean colours are decoded, which that byte
    may not reach). In a whole file only the bottom rows change; in a
    file cut short and given its end marker again, libjpeg ran out of data
    at the cut, and the change is there, higher up. (Progressive JPEGs are
    coded in several passes over the whole picture: this test does not
    apply to them.)
    """
    from PIL import Image

    def decoded(jpeg_data):
        with Image.open(io.BytesIO(jpeg_data), formats=('JPEG',)) as picture:
            if picture.width * picture.height > LARGE_PHOTO:  # at half size: less memory
                picture.draft('RGB', (picture.width // 2, picture.height // 2))
            return np.asarray(picture.convert('RGB'))

    try:
        as_it_is = decoded(data)
        shortened = decoded(data[:layout.scan_end - 1] + data[layout.scan_end:])
    except Exception:  # noqa: BLE001 (a decoder error is load_image's to report)
        return
    changed_rows = np.flatnonzero((as_it_is != shortened).any(axis=(1, 2)))
    if changed_rows.size == 0:
        return
    width, height = layout.size
    most_across = max(across for across, _ in layout.sampling)
    most_down = max(down for _, down in layout.sampling)
    rows_of_blocks = -(-height // (8 * most_down))
    blocks_across = -(-width // (8 * most_across))
    first_row = int(changed_rows[0] * rows_of_blocks // as_it_is.shape[0])
    # One byte codes at most a few blocks (two bits each, at the least); the
    # colour upsampling spreads a change one pixel up
    if first_row < rows_of_blocks - 2 - 8 // blocks_across:
        share = first_row * 100 // rows_of_blocks
        raise DataError(
            f'{path} is damaged or cut short: its image data ends {share}% of the way down '
            f'its {width} x {height} pixels; the rest would be made up. It is not '
            'classified; save or download it again.')


def check_jpeg_has_all_its_passes(path, layout):
    """Fails when a progressive JPEG's passes stop before its picture is complete.

    A progressive JPEG sends its picture in passes over the whole of it: the
    coarse colours first, then finer and finer detail, each pass a scan
    naming the coefficients it brings and to which precision. Encoders send
    every coefficient of every colour to full precision; a file cut short
    and given its end marker again lacks its last passes, and libjpeg shows
    the blurred picture it has without an error. (A cut inside the last pass
    is not found: that pass adds the finest detail only.)
    """
    if layout.coefficients_sent < layout.coefficients:
        raise DataError(
            f'{path} is damaged or cut short: it is a progressive JPEG, sent in passes of '
            'finer and finer detail, and its passes stop before its detail is complete. '
            'It is not classified; save or download it again.')


def jpeg_layout(data):
    """The layout of a Huffman-coded JPEG (a JpegLayout), or None for other codings."""
    size, sampling, sequential, blocks, coded_bytes, scan_end = None, [], True, 0, 0, None
    precision = {}  # progressive: {(colour, coefficient): the finest bit sent so far}
    colours = []
    position = 2  # after the start marker, FF D8
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
            colours = list(segment[6:6 + 3 * components:3])
            if not sampling or height == 0 or not all(h and v for h, v in sampling):
                return None  # a height given later (DNL), or a header Pillow refuses
            size, sequential = (width, height), marker != 0xC2
            most_across = max(h for h, _ in sampling)
            most_down = max(v for _, v in sampling)
            blocks = sum(_blocks(width, h, most_across) * _blocks(height, v, most_down)
                         for h, v in sampling)
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # lossless or arithmetic coding: no such bound
        elif marker == 0xDA:  # a scan: its coded data runs to the next marker (not RSTn)
            if segment and len(segment) >= 4 + 2 * segment[0]:  # colours, coefficients, bits
                first, last, bits = segment[1 + 2 * segment[0]:4 + 2 * segment[0]]
                for colour in segment[1:1 + 2 * segment[0]:2]:
                    for coefficient in range(first, min(last, 63) + 1):
                        key = colour, coefficient
                        precision[key] = min(precision.get(key, 99), bits & 15)
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
            position = scan_end = end
    if size is None or scan_end is None:
        return None
    coefficients_sent = sum(precision.get((colour, coefficient)) == 0
                            for colour in colours for coefficient in range(64))
    return JpegLayout(size, sampling, sequential, blocks, coded_bytes, scan_end,
                      coefficients_sent, 64 * len(colours))


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


