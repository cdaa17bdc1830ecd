"""restore_model.py --image: own photos classified, and files that cannot be read.

Each photo gets its path and three guesses; a file that is missing, empty, not
a PNG or JPEG or far too large, and a run whose mean image is damaged, end in
one message naming the file.
"""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from script_runs import assert_user_error

import data_helpers
import restore_model
from tutorial_support import photos, run_dirs


def parse_top3(out, paths):
    """{path: [(class, probability), ...]} from restore_model --image output."""
    lines = out.splitlines()
    result = {}
    for path in paths:
        start = lines.index(f'{path}:') + 1
        result[path] = [(name, float(value)) for name, value in
                        (line.split() for line in lines[start:start + 3])]
    return result


@pytest.fixture(scope='module')
def two_photos(tmp_path_factory):
    """A 45 x 77 PNG and a 300 x 17 JPEG."""
    folder = tmp_path_factory.mktemp('photos')
    rng = np.random.default_rng(7)
    png = str(folder / 'a.png')
    jpeg = str(folder / 'b.jpg')
    Image.fromarray(rng.integers(0, 256, (77, 45, 3), dtype=np.uint8)).save(png)
    Image.fromarray(rng.integers(0, 256, (17, 300, 3), dtype=np.uint8)).save(jpeg, 'JPEG')
    return png, jpeg


@pytest.mark.parametrize('how', ['repeated flag', 'paths after one flag'])
def test_restore_classifies_own_photos(run, short_fc_run, two_photos, how):
    """For each file: its path, then three 'class probability' lines, best first."""
    train_dir, _, _ = short_fc_run
    png, jpeg = two_photos
    args = (['--image', png, '--image', jpeg] if how == 'repeated flag'
            else ['--image', png, jpeg])
    code, out, err = run(restore_model, '--train_dir', train_dir, *args)
    assert code == 0, err
    assert 'Test accuracy' not in out
    top3 = parse_top3(out, [png, jpeg])
    lines = out.splitlines()
    assert lines.index(f'{png}:') < lines.index(f'{jpeg}:')
    for path, guesses in top3.items():
        names = [name for name, _ in guesses]
        probabilities = [probability for _, probability in guesses]
        assert set(names) <= set(data_helpers.CLASSES) and len(set(names)) == 3, path
        assert probabilities == sorted(probabilities, reverse=True), path
        assert all(0 <= p <= 1 for p in probabilities)
        assert sum(probabilities) <= 1 + 3 * 5e-5  # printed to 4 decimals
    assert top3[png] != top3[jpeg]


def png_header(width, height):
    """A PNG that declares its size and holds no pixels: what a decompression bomb starts with."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data)))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IEND', b'')


@pytest.mark.parametrize('kind, phrase', [
    ('missing', 'does not exist'),
    ('empty', 'is empty'),
    ('text', 'is not a PNG or JPEG image'),
    ('gif', 'is not a PNG or JPEG image'),  # a real picture, in a format never opened
    ('bomb', 'pixels'),  # 30000 x 30000: refused from its header, before any decoding
    ('too-large', '64 megapixels'),
])
def test_restore_image_that_cannot_be_read(run, short_fc_run, tmp_path, kind, phrase):
    """A missing, empty, text or oversized file given to --image: exit 1, the message names it."""
    path = tmp_path / 'photo.png'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'text':
        path.write_text('a shopping list, not a photo\n')
    elif kind == 'gif':
        Image.new('RGB', (40, 30), 'red').save(path, format='GIF')
    elif kind == 'bomb':
        path.write_bytes(png_header(30000, 30000))
    elif kind == 'too-large':
        path.write_bytes(png_header(9000, 8000))
    code, out, err = run(restore_model, '--train_dir', short_fc_run[0], '--image', str(path))
    assert_user_error(code, err, str(path), phrase)
    assert str(path) + ':' not in out
    if kind == 'text':
        assert path.read_text() == 'a shopping list, not a photo\n'


def png_claiming_more_rows(width, height, rows_held):
    """A well-formed PNG whose one data stream ends properly after `rows_held` rows of `height`.

    Pillow decodes it without complaint, the missing rows black.
    """
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data)))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = np.random.default_rng(3).integers(0, 256, (rows_held, width * 3), dtype=np.uint8)
    data = b''.join(b'\x00' + row.tobytes() for row in rows)  # filter 0 a row
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(data))
            + chunk(b'IEND', b''))


@pytest.mark.parametrize('kind', ['png-claiming-more-rows', 'png-cut-short', 'jpeg-cut-short',
                                  'jpeg-claiming-more-pixels', 'jpeg-cut-with-its-end-marker',
                                  'progressive-jpeg-cut-with-its-end-marker'])
def test_damaged_image_is_refused_never_classified(run, short_fc_run, tmp_path, kind):
    """A file whose header claims more pixels than it holds: a message naming it, no guesses."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    path = tmp_path / ('photo.png' if kind.startswith('png') else 'photo.jpg')
    if kind == 'png-claiming-more-rows':
        path.write_bytes(png_claiming_more_rows(160, 120, 40))
        phrase = 'its header says 160 x 120 pixels, but its image data holds only 33%'
    elif kind == 'jpeg-claiming-more-pixels':  # its size patched, its data ended properly
        Image.fromarray(pixels).save(path, format='JPEG')
        whole = path.read_bytes()
        size_at = whole.index(b'\xff\xc0') + 5  # the frame header: precision, height, width
        path.write_bytes(whole[:size_at] + struct.pack('>HH', 8000, 8000) + whole[size_at + 4:])
        phrase = 'its header says 8000 x 8000 pixels, but its image data could hold at most'
    elif kind == 'jpeg-cut-with-its-end-marker':  # libjpeg makes up the rest without an error
        Image.fromarray(pixels).save(path, format='JPEG')
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 2] + b'\xff\xd9')
        phrase = 'of the way down its 160 x 120 pixels; the rest would be made up'
    elif kind == 'progressive-jpeg-cut-with-its-end-marker':  # the last passes missing
        Image.fromarray(pixels).save(path, format='JPEG', progressive=True)
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 2] + b'\xff\xd9')
        phrase = 'its passes stop before its detail is complete'
    else:
        Image.fromarray(pixels).save(path, format='PNG' if kind.startswith('png') else 'JPEG')
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 2])
        phrase = 'cut short'
    code, out, err = run(restore_model, '--train_dir', short_fc_run[0], '--image', str(path))
    assert_user_error(code, err, str(path), phrase, 'damaged')
    assert str(path) + ':' not in out


@pytest.mark.parametrize('damage', ['not-numpy', 'empty', 'huge-shape', 'pickled'])
def test_restore_with_a_damaged_mean_image(run, fc_run_to_edit, tmp_path, damage):
    """--image with a run whose mean_image.npy is damaged or hostile: named, nothing run."""
    train_dir, folder = fc_run_to_edit
    mean_path = os.path.join(folder, run_dirs.MEAN_IMAGE_FILE)
    if damage in ('not-numpy', 'empty'):  # empty: a run killed while writing it
        with open(mean_path, 'wb') as f:
            f.write(b'not numpy' if damage == 'not-numpy' else b'')
    elif damage == 'huge-shape':  # a header that asks for 4 TB
        with open(mean_path, 'wb') as f:
            np.lib.format.write_array_header_1_0(
                f, {'descr': '<f4', 'fortran_order': False, 'shape': (10 ** 12,)})
            f.write(bytes(100))
    else:  # an object array: loading it would unpickle, and so run code
        np.save(mean_path, np.array([print], dtype=object), allow_pickle=True)
    photo = tmp_path / 'photo.png'
    Image.new('RGB', (40, 30), 'red').save(photo)
    code, out, err = run(restore_model, '--train_dir', train_dir, '--image', str(photo))
    assert_user_error(code, err, mean_path, 'Delete it')


def test_a_16_bit_grey_png_is_scaled_to_8_bits_in_colour(tmp_path):
    """A 16-bit grey photo: its brightest value becomes 255, in all three channels."""
    grey = np.full((64, 64), 40000, np.uint16)
    grey[:, 32:] = 10000
    path = str(tmp_path / 'scan.png')
    Image.fromarray(grey).save(path)
    pixels = photos.load_image(path).reshape(3, 32, 32)
    assert (pixels[0] == pixels[1]).all() and (pixels[1] == pixels[2]).all()
    assert (pixels[0, :, :12] == 255).all()
    assert (pixels[0, :, -12:] == 64).all()  # 10000 * 255 / 40000 = 63.75, rounded
