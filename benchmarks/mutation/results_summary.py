"""results.md: the table of every module's results and each surviving mutant."""

import json
import os

from targets import ONLY_FUNCTIONS, TARGETS

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')
SUMMARY = os.path.join(HERE, 'results.md')


def target_name(module):
    """'`deep_cnn_model.py` (`learning_rate_schedule` only)', '`run_lock.py`': for results.md."""
    return f'`{TARGETS[module][0]}`' + ''.join(f' (`{function}` only)'
                                              for function in ONLY_FUNCTIONS.get(module, []))


def write_summary():
    """results.md: one row per module from results/*.json, then every survivor."""
    rows, sections, not_run = [], [], []
    for module in TARGETS:
        path = os.path.join(RESULTS, module + '.json')
        if not os.path.isfile(path):
            not_run.append(module)
            continue
        with open(path) as f:
            result = json.load(f)
        rate = '-' if result['kill_rate'] is None else f"{100 * result['kill_rate']:.1f}%"
        name = target_name(module)
        rows.append(f"| {name} | {result['mutants']} | {result['killed']} | "
                    f"{result['timeout']} | {result['survived_equivalent']} | "
                    f"{result['survived_other']} | {rate} | {result['minutes']} | "
                    f"{result['commit']}, {result['date']} |")
        lines = [f'### {name}', '',
                 'Tests: ' + ', '.join(f'`{test}`' for test in result['tests']) + '.', '']
        for title, key in (('Equivalent (cannot change behaviour)', 'survivors_equivalent'),
                           ('Other survivors', 'survivors_other')):
            if result[key]:
                lines += [f'{title}:', '']
                for entry in result[key]:
                    note = entry.get('reason') or entry.get('status', 'survived')
                    lines.append(f"- `{entry['function']}`: {note}")
                    lines += [f'  `{line}`' if len(line) < 160 else f'  `{line[:157]}...`'
                              for line in entry['diff']]
                lines.append('')
        sections.append('\n'.join(lines))
    with open(SUMMARY, 'w') as f:
        f.write('# Mutation testing: results\n\n'
                'Written by `benchmarks/mutation/mutate.py` (see README.md there). Killed: '
                'a test failed; timed out: the tests ran 10 times as long as for the real '
                'code, and were stopped (counted as found). The kill rate is (killed + timed '
                'out) / (mutants - equivalent).\n\n'
                '| module | mutants | killed | timed out | survived, equivalent | '
                'survived, other | kill rate | minutes | commit, date |\n'
                '|---|---|---|---|---|---|---|---|---|\n' + '\n'.join(rows) + '\n\n'
                + (f"Not run yet: {', '.join(target_name(module) for module in not_run)} "
                   '(see README.md). They run with `nice -n 10 python '
                   f"benchmarks/mutation/mutate.py {' '.join(not_run)}`.\n\n"
                   if not_run else '')
                + '## Surviving mutants\n\n' + '\n'.join(sections))
