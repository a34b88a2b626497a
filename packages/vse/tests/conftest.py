"""One torch thread for this package's tests: their tensors are tiny, and on a shared machine
a second thread only adds contention (the suite runs about twice as fast). Restored after each
test, so other packages' tests in the same session keep their setting."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
