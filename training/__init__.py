"""Training the screening classifier: ``smsguard train`` (see training/run.py and models/MODEL_CARD.md).

data.py reads ../shared/data and makes the seeded dev split; model.py fits the sklearn models;
export.py turns them into the ONNX graph the engine serves (engine/_onnx_classifier.py);
evaluate.py and card.py measure and write the model card; reviews.py reads reviewer labels for
``--with-reviews``. Text preparation is shared with serving: engine/_features.py.
"""
