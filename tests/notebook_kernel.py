"""Executes a notebook of notebooks/ in a real Jupyter kernel, and reads what it showed.

The kernel is this interpreter (`sys.executable -m ipykernel_launcher`), whatever
kernels are installed for the user. Settings are changed as papermill does it:
a cell of assignments is put right after the cell tagged `parameters`. Cells
tagged `skip-execution` (TensorBoard) are not run.
"""

import os
import sys

import jupytext
import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'notebooks')


class ThisInterpreter(KernelSpecManager):
    """Every kernel name means an IPython kernel on the interpreter running the tests."""

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(argv=[sys.executable, '-m', 'ipykernel_launcher', '-f',
                                '{connection_file}'],
                          display_name='Python (tests)', language='python')


def read_source(name):
    """The notebook made from notebooks/NAME.py, as jupytext reads it (not the .ipynb)."""
    return jupytext.read(os.path.join(NOTEBOOK_DIR, name + '.py'))


def with_settings(notebook, **settings):
    """A copy of the notebook with a cell setting the given names after its parameters cell."""
    notebook = nbformat.from_dict(notebook)
    (index,) = [k for k, cell in enumerate(notebook.cells)
                if 'parameters' in cell.metadata.get('tags', [])]
    lines = [f'{name} = {value!r}' for name, value in settings.items()]
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell('\n'.join(lines)))
    return notebook


def execute(notebook, timeout=600):
    """Runs every cell in one new kernel started in notebooks/, as Jupyter does; returns it.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed (the test fails).
    """
    manager = KernelManager(kernel_spec_manager=ThisInterpreter())
    client = NotebookClient(notebook, km=manager, timeout=timeout,
                            resources={'metadata': {'path': NOTEBOOK_DIR}})
    client.execute()
    return notebook


def outputs(notebook, output_type=None):
    """Every output of every code cell, in order (of one output_type if given)."""
    return [output for cell in notebook.cells if cell.cell_type == 'code'
            for output in cell.get('outputs', [])
            if output_type is None or output.output_type == output_type]


def printed(notebook, stream='stdout'):
    """All the text the cells printed on a stream, in order."""
    return ''.join(output.text for output in outputs(notebook, 'stream')
                   if output.name == stream)


def images(notebook):
    """The PNG images the cells showed (base64 text, as stored in the notebook)."""
    return [output.data['image/png'] for output in outputs(notebook)
            if 'image/png' in output.get('data', {})]
