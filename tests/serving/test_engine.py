"""The engine's sessions: a lone image is inferred by a one-thread session that answers as the batch session does."""

from __future__ import annotations

import numpy as np

from serving.engine import load_model, prepare
from serving.settings import EngineSettings


def test_a_lone_image_has_a_one_thread_session_with_the_batch_sessions_answers(models, casting_images):
    model = load_model(models["model"], EngineSettings(intra_op_threads=2), 10**7)
    assert model.solo is not model.classifier
    assert model.solo.session.get_session_options().intra_op_num_threads == 1
    paths = casting_images["defect"][:3] + casting_images["normal"][:3]
    images = [prepare(p.read_bytes(), model.spec).x for p in paths]
    batch = model.classifier.predict(np.stack(images))
    alone = np.concatenate([model.solo.predict(x[None]) for x in images])
    np.testing.assert_allclose(alone, batch, atol=1e-6)


def test_one_thread_settings_need_no_second_session(models):
    model = load_model(models["model"], EngineSettings(intra_op_threads=1), 10**7)
    assert model.solo is model.classifier
