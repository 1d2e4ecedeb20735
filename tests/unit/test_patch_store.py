"""The memory-mapped fp16 patch store."""

from __future__ import annotations

import numpy as np
import pytest
from _multivector_pages import DIM, clustered_pages

from polylens.search.patch_store import PatchStore


# -- the patch store ----------------------------------------------------------------------
def test_patch_store_append_head_truncate(tmp_path):
    pages = clustered_pages(5, seed=5)
    store = PatchStore.create(tmp_path, DIM)
    assert len(store) == 0 and store.vectors.shape == (0, DIM)
    np.testing.assert_array_equal(store.append(pages[:3]), [0, 1, 2])
    np.testing.assert_array_equal(store.append(pages[3:]), [3, 4])
    reopened = PatchStore.open(tmp_path)
    assert len(reopened) == 5
    for i, p in enumerate(pages):
        np.testing.assert_array_equal(reopened.page(i), p.astype(np.float16))
    assert isinstance(reopened.vectors, np.memmap)
    vecs, starts = reopened.gather(np.array([4, 1]))
    np.testing.assert_array_equal(vecs[starts[1] :], pages[1].astype(np.float16))
    reopened.prefetch(np.array([0, 3]))  # a hint to the kernel: no visible effect
    reopened.release()  # drops the memory map; the next read maps the file again
    np.testing.assert_array_equal(reopened.page(3), pages[3].astype(np.float16))
    view = reopened.head(2)
    assert len(view) == 2
    with pytest.raises(PermissionError):
        view.append(pages[:1])
    reopened.truncate(3)
    assert len(PatchStore.open(tmp_path)) == 3
    with pytest.raises(ValueError):
        store.append([np.zeros((0, DIM), np.float32)])
