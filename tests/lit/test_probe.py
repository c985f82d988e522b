import torch

from smile.lit.probe import extract_features, knn_classify, linear_probe
from smile.models import create_encoder


def _blobs(n_per_class: int, seed: int):
    """Two Gaussian blobs in 8-D: linearly separable."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.randn(n_per_class, 8, generator=gen) + 3, torch.randn(n_per_class, 8, generator=gen) - 3])
    y = torch.cat([torch.zeros(n_per_class, dtype=torch.long), torch.ones(n_per_class, dtype=torch.long)])
    return x, y


def test_linear_probe_and_knn_separate_separable_features():
    train, test = _blobs(50, 0), _blobs(20, 1)
    assert linear_probe(train, test, num_classes=2, epochs=20)["test_acc1"] == 1.0
    assert knn_classify(train, test, num_classes=2, k=5)["test_acc1"] == 1.0
    shuffled = (train[0], train[1][torch.randperm(100, generator=torch.Generator().manual_seed(0))])
    assert knn_classify(shuffled, test, num_classes=2, k=5)["test_acc1"] < 0.8  # labels carry the signal


def test_knn_weights_votes_by_similarity():
    bank = (torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 1, 1]))
    query = (torch.tensor([[1.0, 0.05]]), torch.tensor([0]))
    # 1 close neighbour of class 0 outweighs 2 far ones of class 1 at a low temperature
    assert knn_classify(bank, query, num_classes=2, k=3, temperature=0.07)["test_acc1"] == 1.0


def test_features_are_mean_pooled_tokens_and_cached(tmp_path):
    enc = create_encoder("vit_tiny_patch16", num_classes=4, num_frames=4, img_size=32)
    video = torch.randn(3, 3, 4, 32, 32)
    batches = [{"video": video[:2], "label": torch.tensor([0, 1])}, {"video": video[2:], "label": torch.tensor([2])}]
    feats, labels = extract_features(enc, batches, cache=tmp_path / "f.pt")
    enc.eval()
    torch.testing.assert_close(feats, enc.forward_features(video).mean(1))
    assert labels.tolist() == [0, 1, 2] and enc.training is False
    again, _ = extract_features(None, [], cache=tmp_path / "f.pt")  # served from the cache file
    assert torch.equal(again, feats)
