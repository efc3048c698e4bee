"""The README's programmatic example runs as written."""

import pathlib
import re


def test_readme_train_step_example_runs(capsys):
  readme = (pathlib.Path(__file__).parents[1] / 'README.md').read_text()
  block = re.search(r'<!-- example:train_step -->\s*```python\n(.*?)```',
                    readme, re.S)
  assert block, 'README example block not found'
  exec(compile(block.group(1), 'README.md', 'exec'), {})  # pylint: disable=exec-used
  # Building the shapes dataset on first use may print progress first.
  step, loss = capsys.readouterr().out.strip().splitlines()[-1].split()
  assert int(step) == 2 and float(loss) > 0
