"""An Optuna search that can be resumed: Hydra's Optuna sweeper, which with ``resume=true`` reloads its study from
``optuna.db`` and runs only the trials still missing. (Hydra builds sweepers only from its ``hydra_plugins``
package: this is the lab's one module there.)

The plugin's own sweeper reloads an existing study but runs ``n_trials`` more every time. Here, resumed, the trials
that ended count towards ``n_trials``; a trial that was running when the search was stopped (an interrupted job)
is asked again first, with its parameters and its job number, so that its job resumes in its own directory from its
``last.ckpt`` (``nndl.resume``); the new trials' jobs are numbered after it. The sampler's seed moves on by the
number of trials in the study, so that the new trials do not repeat the first ones.
"""

import functools
import logging
from typing import Any

from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class ResumableOptunaSweeper(OptunaSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.resume = config.get("resume") in (True, "auto")

    def sweep(self, arguments: list[str]) -> Any:
        if self.resume:
            self._continue_study()
        return super().sweep(arguments)

    def _continue_study(self) -> None:
        import optuna  # here, not when Hydra looks through its plugins at every start

        impl = self.sweeper
        try:
            study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
        except KeyError:  # no such study yet: a fresh search
            return
        states = optuna.trial.TrialState
        ended = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED, states.FAIL)]
        running = [t for t in study.trials if t.state == states.RUNNING]
        for trial in running:  # stopped with its job: ended as failed, and asked again first
            study._storage.set_trial_state(trial._trial_id, states.FAIL)
            study.enqueue_trial(trial.params)
        sampler = impl.config.hydra.sweeper.get("sampler")
        if not isinstance(impl.sampler, functools.partial) and sampler is not None and sampler.get("seed") is not None:
            # A sampler seeded as before would draw its first points again: the new trials would repeat the old.
            # Seeded past the trials there are, the resumed search is as reproducible and explores on.
            impl.sampler = instantiate(sampler, seed=int(sampler.seed) + len(study.trials))
        impl.n_trials = max(0, impl.n_trials - len([t for t in ended if t.state != states.FAIL]))
        impl.job_idx = running[0].number if running else len(study.trials)
        log.info(
            f"Resumed study {impl.study_name}: {len(ended)} trials ended, {len(running)} interrupted, "
            f"{impl.n_trials} to run"
        )
