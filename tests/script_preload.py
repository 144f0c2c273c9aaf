"""What the scripts import, imported once by the fork server of ``cli.start_script`` (see ``cli.PRELOAD``).

In a script these modules load inside the Hydra job, after Hydra has given the root logger its handlers; Lightning,
seeing them, then adds no console handler of its own. A handler on the root logger while they load keeps that so.
"""

import logging

_handler = logging.NullHandler()
logging.root.addHandler(_handler)
try:
    import hydra  # noqa: F401
    import lightning.pytorch  # noqa: F401
    import torchvision  # noqa: F401

    import nndl.evaluate
    import nndl.export
    import nndl.predict
    import nndl.train  # noqa: F401
finally:
    logging.root.removeHandler(_handler)
