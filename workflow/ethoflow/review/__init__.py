"""``ethoflow review``: a local web app to check predicted bouts on the video and correct them.

``store`` reads a run's results and writes the reviewed annotations (``results/review/``);
``app`` is the Starlette application over a store; ``static/`` is its plain-JS front end.
"""
