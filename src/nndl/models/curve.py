"""One hidden layer approximating a function of one variable (chapter 4): the universality of neural nets."""

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from nndl.costs import Cost
from nndl.data.function import FUNCTIONS
from nndl.errors import check_range
from nndl.loggers import tensorboard_logger
from nndl.models.network import BUILT_ARGUMENTS, Activation, Network, OptimizerFactory, SchedulerFactory

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class CurveFit(Network):
    """x → ``hidden`` neurons σ(w x + b) → one linear output neuron, fitted to f(x) (chapter 4).

    The book's visual proof builds f from steps: a steep sigmoid neuron is a step at s = −b/w, and the output
    neuron adds the steps up with its weights. Here the hidden neurons start as such steps, at positions s drawn
    uniformly over [0, 1] with steepness |w| about ``steepness``, and gradient descent moves and weighs them.
    When the run logs to TensorBoard, the figure ``universality/fit`` (IMAGES tab) shows f and the network's
    output every ``plot_every`` epochs and after the last.

    Args:
        hidden: the number of hidden neurons.
        steepness: the standard deviation of the hidden weights w at the start.
        function: the f the data module draws from (for the figure's target curve).
    """

    def __init__(
        self,
        cost: Cost,
        optimizer: OptimizerFactory,
        activation: Activation,
        hidden: int = 20,
        steepness: float = 20.0,
        function: str = "book",
        plot_every: int = 10,
        scheduler: SchedulerFactory | None = None,
        l2: float = 0.0,
    ) -> None:
        super().__init__(cost, optimizer, scheduler, l2)
        check_range("model.hidden", hidden, 1)
        self.save_hyperparameters(ignore=BUILT_ARGUMENTS, logger=False)
        self.hidden_layer, self.activation, self.output_layer = nn.Linear(1, hidden), activation(), nn.Linear(hidden, 1)
        self.f, self.plot_every = FUNCTIONS[function], plot_every
        with torch.no_grad():
            self.hidden_layer.weight.normal_(0.0, steepness)
            steps = torch.rand(hidden)  # s = −b/w, where each neuron steps
            self.hidden_layer.bias.copy_(-self.hidden_layer.weight[:, 0] * steps)

    @property
    def architecture(self) -> str:
        return f"1-{self.hidden_layer.out_features}-1"

    def forward(self, x: Tensor) -> Tensor:
        return self.output_layer(self.activation(self.hidden_layer(x)))

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        last = self.trainer.max_epochs is not None and self.current_epoch + 1 >= self.trainer.max_epochs
        if self.trainer.sanity_checking or not ((self.current_epoch + 1) % self.plot_every == 0 or last):
            return
        tensorboard = tensorboard_logger(self.loggers)  # the figure is TensorBoard's: none with other loggers
        if tensorboard is not None:
            tensorboard.experiment.add_figure("universality/fit", self.figure(), global_step=self.current_epoch)

    @torch.no_grad()
    def figure(self) -> "Figure":
        """f and the network's output over [0, 1]."""
        from nndl.figures import agg_figure  # matplotlib loads only when a figure is drawn

        x = torch.linspace(0, 1, 500, device=self.device).unsqueeze(1)
        fig = agg_figure(5, 3.5)
        ax = fig.add_subplot()
        ax.plot(x.cpu(), self.f(x).cpu(), label="f(x)", linewidth=2)
        ax.plot(x.cpu(), self(x).cpu(), label=f"network, {self.hidden_layer.out_features} hidden neurons")
        ax.set(xlabel="x", ylim=(-0.1, 1.1), title=f"epoch {self.current_epoch + 1}")
        ax.legend(loc="upper left")
        fig.tight_layout()
        return fig
