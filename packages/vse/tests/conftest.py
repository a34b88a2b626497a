"""One torch thread for this package's tests: their tensors are tiny, and on a shared machine
a second thread only adds contention (the suite runs about twice as fast)."""

import torch

torch.set_num_threads(1)
