import torch

from l4demons.merge import merge_weights


def test_their_commit_stays_whole_and_our_change_counts_half():
    base = {"w": torch.zeros(3), "n": torch.tensor(5)}
    ours = {"w": torch.tensor([2.0, 0.0, 4.0]), "n": torch.tensor(7)}
    theirs = {"w": torch.tensor([0.0, 2.0, 2.0]), "n": torch.tensor(9)}
    merged, _ = merge_weights(theirs, ours, base)
    assert torch.allclose(merged["w"], theirs["w"] + 0.5 * (ours["w"] - base["w"]))
    assert torch.allclose(merged["w"], torch.tensor([1.0, 2.0, 4.0]))
    assert merged["n"].item() == 9  # integer buffers come from theirs


def test_a_second_conflict_adds_half_of_our_delta_once():
    base = {"w": torch.zeros(2)}
    ours = {"w": torch.tensor([4.0, 4.0])}
    first, new_base = merge_weights({"w": torch.tensor([1.0, 0.0])}, ours, base)
    # our in-memory weights are now `first`; the hub moved again, by +1 on the second weight
    theirs_again = {"w": torch.tensor([1.0, 1.0])}
    second, _ = merge_weights(theirs_again, first, new_base)
    assert torch.allclose(second["w"], theirs_again["w"] + 0.5 * ours["w"])
