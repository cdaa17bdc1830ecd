"""docs/tf1_to_tf2.md: the migration map quotes lines that are in the scripts.

The map puts each TF1 construct the posts teach beside its TF2 form, quoting
a line of each script as `file`: `line`. Quotes, unlike line numbers, can be
checked: each must still be in its file.
"""

import os
import re

from script_runs import PROJECT_DIR

MAP = os.path.join(PROJECT_DIR, 'docs', 'tf1_to_tf2.md')
QUOTE = re.compile(r'`((?:tf2/|tutorial_support/)?[a-z_0-9]+\.py)`: `([^`]+)`')
# What the posts teach, each a row of the map
CONSTRUCTS = ('placeholder', '`feed_dict`', 'feeding batches', '`Session`',
              '`sess.run` of the train op', 'the initializer', '`variable_scope`',
              '`get_variable`', 'the regularization collection', 'Adam', '`evaluation`',
              '`global_step`', '`Saver`', 'starting from a TF1 run', '`FileWriter`',
              '`merge_all`', "the CNN's dropout placeholder")


def map_rows():
    """The rows of the map's table: {construct: (TF1 cell, TF2 cell)}."""
    with open(MAP) as f:
        text = f.read()
    section = text.split('## The map', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split(' | ')]
        if len(cells) == 4 and cells[0] not in ('TF1 construct', '---'):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_every_quoted_line_is_in_its_script():
    """Each `file`: `line` of the map is a line (or part of one) of that file."""
    rows = map_rows()
    quotes = [quote for tf1, tf2 in rows.values() for quote in QUOTE.findall(tf1 + tf2)]
    assert len(quotes) > 40
    for path, line in quotes:
        with open(os.path.join(PROJECT_DIR, path)) as f:
            assert line in f.read(), (path, line)


def test_the_map_covers_what_the_posts_teach():
    """Every construct has a row quoting a TF1 script and its TF2 twin; the README links it."""
    rows = map_rows()
    for construct in CONSTRUCTS:
        tf1, tf2 = rows[construct]
        assert all(not path.startswith('tf2/') for path, _ in QUOTE.findall(tf1)), construct
        assert QUOTE.findall(tf1), construct
        assert [path for path, _ in QUOTE.findall(tf2) if path.startswith('tf2/')], construct
    with open(os.path.join(PROJECT_DIR, 'README.md')) as f:
        assert '(docs/tf1_to_tf2.md)' in f.read()
