"""Every command the README shows runs as written.

A learner copies the commands of the README (and of the pages it links) into
a shell. Each must name scripts that exist, pass only flags those scripts
define, and name no path outside the repository (the shared sample beside
the project is not there for a learner). A command is a line of a ```bash
block, or a line after `$ ` in a block of output.
"""

import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags
from script_runs import PROJECT_DIR

# The pages whose commands a learner runs: the README and the pages it links
# that this suite keeps (a page added to docs/ with commands belongs here).
PAGES = ['README.md', 'CONTRIBUTING.md', 'docs/data.md', 'docs/checkpoints.md',
         'docs/tensorboard.md', 'docs/gpu.md', 'docs/troubleshooting.md', 'docs/safety.md',
         'docs/flags.md']

CODE_BLOCK = re.compile(r'^```(\w*)\n(.*?)^```', re.MULTILINE | re.DOTALL)
PYTHON = re.compile(r'^python(3(\.\d+)?)?$')
SHELL_WORDS = {'do', 'then', 'else', 'time', 'nice', 'nohup', '!'}
SEPARATORS = {'&&', '||', ';', '|', '&', '(', ')', ';;'}


def commands(text):
    """The shell commands in a Markdown text's code blocks, one list of words each."""
    found = []
    for language, body in CODE_BLOCK.findall(text):
        lines = body.replace('\\\n', ' ').splitlines()
        prompted = [line[2:] for line in lines if line.startswith('$ ')]
        if prompted:
            lines = prompted
        elif language not in ('bash', 'sh', 'shell'):
            continue  # output, or code that is not a command
        for line in lines:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            command = []
            for word in list(lexer) + [';']:
                if word in SEPARATORS:
                    if command:
                        found.append(command)
                    command = []
                elif command or word not in SHELL_WORDS:
                    command.append(word)
    return found


def script_and_flags(command):
    """(script path, [flag words]) when the command runs a Python script, else None."""
    words = list(command)
    while words and '=' in words[0] and not words[0].startswith('-'):
        words.pop(0)  # VARIABLE=value before the program
    if not words or not PYTHON.match(os.path.basename(words[0])):
        return None
    arguments = words[1:]
    while arguments and arguments[0].startswith('-') and arguments[0] not in ('-m', '-c'):
        arguments.pop(0)  # python's own options (-u, -X ...)
    if not arguments or arguments[0] in ('-m', '-c'):
        return None  # a module (python -m pytest) or inline code
    return arguments[0], [word for word in arguments[1:] if word.startswith('--')]


def outside_paths(command):
    """The words of a command that point outside the repository."""
    outside = []
    for word in command:
        for part in word.split('='):
            if '://' in part:
                continue  # an address, not a path
            if part.startswith(('/', '~')) or '..' in part.split('/'):
                outside.append(word)
    return outside


def defined_flags(script):
    """The flags a script defines: {name: True if it is a boolean flag}."""
    path = os.path.join(PROJECT_DIR, script)
    with open(path) as f:
        source = f.read()
    module = None
    if os.path.dirname(script) == '':  # a lesson file: imported as the tests import it
        module = importlib.import_module(script[:-3])
    elif "__name__ == '__main__'" in source or '__name__ == "__main__"' in source:
        name = 'readme_' + re.sub(r'\W', '_', script[:-3])
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # defines its flags; main() does not run
    if module is not None and isinstance(getattr(module, 'FLAGS', None), flags.FlagValues):
        return {name: isinstance(module.FLAGS[name], flags.BooleanFlag)
                for name in module.FLAGS}
    # Not an absl script (argparse, say): the flags its --help lists
    help_text = subprocess.run([sys.executable, path, '--help'], capture_output=True,
                               text=True, timeout=120, cwd=PROJECT_DIR).stdout
    return {name: False for name in re.findall(r'--(\w+)', help_text)}


def page_commands():
    """(page, command) for every command of every page."""
    found = []
    for page in PAGES:
        path = os.path.join(PROJECT_DIR, page)
        assert os.path.isfile(path), f'{page} is missing'
        with open(path) as f:
            found += [(page, command) for command in commands(f.read())]
    return found


def test_the_pages_show_commands():
    """The parser finds the README's commands, so the checks below check something."""
    scripts = {script_and_flags(command)[0] for page, command in page_commands()
               if page == 'README.md' and script_and_flags(command)}
    assert {'softmax.py', 'run_fc_model.py', 'run_cnn_model.py', 'restore_model.py'} <= scripts


def test_no_command_names_a_path_outside_the_repository():
    """No ../shared, no absolute path: a learner has only the repository."""
    bad = [(page, ' '.join(command), outside_paths(command))
           for page, command in page_commands() if outside_paths(command)]
    assert not bad, bad


def test_every_script_exists_and_defines_the_flags_it_is_given():
    """Each `python SCRIPT --flag ...` names a script of the repository and its own flags."""
    flags_of = {}
    problems = []
    for page, command in page_commands():
        found = script_and_flags(command)
        if not found:
            continue
        script, flag_words = found
        if not os.path.isfile(os.path.join(PROJECT_DIR, script)):
            problems.append((page, ' '.join(command), f'{script} does not exist'))
            continue
        if script not in flags_of:
            flags_of[script] = defined_flags(script)
        known = flags_of[script]
        for word in flag_words:
            name = word[2:].split('=')[0]
            negated = name.startswith('no') and known.get(name[2:]) is True
            if name not in known and not negated and name not in ('help', 'helpfull'):
                problems.append((page, ' '.join(command), f'{script} has no --{name}'))
    assert not problems, problems


@pytest.mark.parametrize('text, problem', [
    ('```bash\npython softmax.py --data_dir ../shared/cifar-10-sample\n```\n', 'path'),
    ('```\n$ python run_fc_model.py --hiden1 40\nStep 0\n```\n', 'flag'),
    ('```bash\nfor n in 1 2; do python nowhere.py --seed $n; done\n```\n', 'script'),
])
def test_the_checks_catch_a_bad_command(text, problem):
    """A path outside, an unknown flag, a missing script: each is found."""
    (command,) = [c for c in commands(text) if script_and_flags(c)]
    script, flag_words = script_and_flags(command)
    if problem == 'path':
        assert outside_paths(command) == ['../shared/cifar-10-sample']
    elif problem == 'flag':
        assert 'hiden1' not in defined_flags(script) and flag_words == ['--hiden1']
    else:
        assert not os.path.isfile(os.path.join(PROJECT_DIR, script))
