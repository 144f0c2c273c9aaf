"""The shape of MNIST's examples, defined once for the data, the costs, the models and the config checks: 28×28
grey images of the ten digits 0–9. Imports nothing, so that ``nndl.validate`` can read it without torch."""

IMAGE_SIZE = 28  # pixels per side of an image
IMAGE_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)  # one grey channel: an image as the networks take it
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784: the input neurons of the fully connected network
NUM_CLASSES = 10  # the digits 0–9: the output neurons
