"""The resume guard that the training entry point patch inserts into the target's `train_cached.py`.

The patch copies `checkpoints_of_model_type` as it is and calls it on the list
of checkpoints that the resume logic is about to try.
"""


def checkpoints_of_model_type(cache, checkpoint_ids, model_type):
    """Return the checkpoints that a `model_type` model can resume from, printing a line for each one skipped.

    A checkpoint of the other model type has other weights under the same
    names, and a failed `load_state_dict` still copies the weights that do
    match, so the skip happens before any load. Checkpoints saved before the
    model type was recorded are NanEcho checkpoints.
    """
    kept = []
    for checkpoint_id in checkpoint_ids:
        saved_type = cache.metadata[checkpoint_id].model_config.get("model_type", "NanEcho")
        if saved_type != model_type:
            print(f"⏭️  Skipping checkpoint {checkpoint_id}: it holds a {saved_type} model, this run trains a {model_type} model")
            continue
        kept.append(checkpoint_id)
    return kept
