"""Content vectors: wordllama loads from the installed wheel with the network refused, topical
texts land near each other, reposts take their original's vector."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from phoenix.content import CONTENT_DIM, ContentStore, encode_texts

_OFFLINE_SCRIPT = textwrap.dedent("""
    import socket
    def refuse(*args, **kwargs):
        raise OSError("network refused by the test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    from phoenix.content import encode_texts
    v = encode_texts(["Loving the telescope with nebula, comet #astronomy"])
    assert v.shape == (1, 256) and abs(float((v * v).sum()) - 1.0) < 1e-4, v
    print("loaded-offline")
""")


def test_encoder_loads_with_the_network_unreachable(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path),  # an empty home: no cache
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "loaded-offline" in out.stdout
    assert not (tmp_path / ".cache").exists()  # nothing was cached (downloaded) under the home


def test_topical_texts_are_closer_than_other_topics():
    v = encode_texts(["Hot take on goal versus striker, derby #football",
                      "Quick thread on penalty with keeper, league #football",
                      "Loving the telescope with nebula, comet #astronomy",
                      ""])
    assert v.shape == (4, CONTENT_DIM) and v.dtype == np.float32
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert not v[3].any()  # empty text = no content


def test_store_reposts_take_the_original_vector_and_unknown_posts_are_zero():
    store = ContentStore(initial_capacity=2)
    store.add_posts([10, 11], ["Today's recipe with garlic, oven #cooking", "RT @maya: something else"],
                    repost_of=[0, 10])
    got = store.get([10, 11, 99])
    np.testing.assert_allclose(got[1], got[0])
    assert got[0].any() and not got[2].any()
    store.add_posts([12], ["RT @maya: whatever"], repost_of=[10])  # original from an earlier batch
    np.testing.assert_allclose(store.get([12])[0], got[0])
    store.remove([10])
    assert 10 not in store and len(store) == 2 and not store.get([10]).any()


def test_cached_chunk_pooling_equals_wordllama_embed():
    from phoenix.content import _model
    texts = ["Hot take on goal versus striker, derby #football", "RT @maya_footb1: Quick thread on jazz",
             "Hello,  world! Ünïcode tëxt — dash... (parens)\tand\nlines #tag 123", "single", "  leading space"]
    expected = np.asarray(_model().embed(texts, norm=True), np.float32)
    np.testing.assert_allclose(encode_texts(texts), expected, atol=1e-5)
    np.testing.assert_allclose(encode_texts(texts[::-1]), expected[::-1], atol=1e-5)  # cache hits
