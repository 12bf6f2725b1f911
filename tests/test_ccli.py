"""What makes CCLI that method: visual concepts mined from the support set with text concepts, a
fixed number of distinctive concepts, a concept branch that only trained labels get, fused with zero-shot."""

import datasets
import torch
import torch.nn.functional as F
from test_linear_probe import colour_data

import hf_zsl
from hf_zsl.methods import ccli
from hf_zsl.methods.ccli_concepts import (
    DUPLICATE_COSINE,
    concept_text_features,
    learn_concepts,
    mine_visual_concepts,
    select_concepts,
    shapes_concepts,
)
from hf_zsl.evaluation import evaluate_protocol
from hf_zsl.protocols import DomainShiftProtocol, FewShotProtocol
from hf_zsl.shapes import shapes_vocabulary
from hf_zsl.training import FitSettings

CLASSES = ["red circle", "blue square", "green star"]
FAST = FitSettings(epochs=15, batch_size=32, learning_rate=1e-1)  # full batch: 3 classes × 8 shots


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def trained_model(tiny_base, **hyperparameters):
    model = hf_zsl.build("ccli", tiny_base, class_names=CLASSES, num_concepts=6, **hyperparameters)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.visual_concepts.copy_(torch.randn(model.visual_concepts.shape, generator=generator))
        model.concept_inference.weight.copy_(torch.randn(model.concept_inference.weight.shape, generator=generator))
    return model


def logits(model, labels, images):
    text = model.tokenizer(labels, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**text, image_embeds=images).logits_per_image


def test_default_bank_uses_only_words_the_tokenizer_knows():
    bank = shapes_concepts()
    assert len(bank) == len(set(bank)) >= 400
    assert {word for phrase in bank for word in phrase.split()} <= set(shapes_vocabulary())


def test_visual_concept_is_the_mean_of_the_top_k_matching_support_features():
    images, text = unit(20, 8, seed=0), unit(5, 8, seed=1)
    visual = mine_visual_concepts(images, text, top_k=3)
    for concept in range(5):
        top = (images @ text[concept]).argsort(descending=True)[:3]
        torch.testing.assert_close(visual[concept], F.normalize(images[top].mean(dim=0), dim=0))


def test_fit_initialises_visual_concepts_from_the_text_selected_images(tiny_base):
    model = hf_zsl.build("ccli", tiny_base, class_names=CLASSES, num_concepts=5, top_k=4)
    images, labels = unit(30, 32, seed=2), torch.arange(30) % 3
    bank = ["red shape", "blue shape", "green shape", "circle", "square", "star", "small shape", "large shape"]
    learned = learn_concepts(model, bank, images, labels, num_classes=3)
    assert len(learned.names) == len(learned.visual) == 5 and set(learned.names) <= set(bank)
    text = concept_text_features(model, learned.names)
    for name, row, concept in zip(learned.names, text, learned.visual):
        top = (images @ row).topk(4).indices
        torch.testing.assert_close(concept, F.normalize(images[top].mean(dim=0), dim=0), msg=name)


def test_selection_keeps_the_configured_count_most_distinctive_first_without_duplicates():
    visual = unit(6, 8, seed=3)
    visual[1] = visual[0]  # a duplicate of the most distinctive concept
    scores = torch.tensor([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    assert select_concepts(visual, scores, 3) == [0, 2, 3]
    assert select_concepts(visual, scores, 6) == [0, 2, 3, 4, 5, 1]  # duplicates fill up last
    assert (visual[0] @ visual[2]) < DUPLICATE_COSINE


def test_only_visual_concepts_and_inference_network_get_gradients(tiny_base):
    model = trained_model(tiny_base)
    model.train()
    text = model.tokenizer(CLASSES, padding=True, return_tensors="pt")
    model(**text, image_embeds=unit(4, 32), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == {"visual_concepts", "concept_inference.weight"}
    assert model.visual_concepts.shape == (6, 32) and model.concept_inference.weight.shape == (3, 6)


def test_alpha_zero_is_zero_shot_clip(tiny_base):
    images = unit(4, 32)
    zeroshot = hf_zsl.build("zeroshot", tiny_base)
    model = trained_model(tiny_base, alpha=0.0)
    torch.testing.assert_close(logits(model, CLASSES, images), logits(zeroshot, CLASSES, images))
    model.config.alpha = 2.0
    assert not torch.allclose(logits(model, CLASSES, images), logits(zeroshot, CLASSES, images))


def test_trained_labels_add_the_centred_concept_branch_and_others_score_zero_shot(tiny_base):
    images, labels = unit(4, 32), ["cat", "blue square", "yellow heart", "red circle"]
    model, zeroshot = trained_model(tiny_base, alpha=2.0), hf_zsl.build("zeroshot", tiny_base)
    ours, reference = logits(model, labels, images), logits(zeroshot, labels, images)
    torch.testing.assert_close(ours[:, [0, 2]], reference[:, [0, 2]])
    with torch.no_grad():
        branch = model.concept_inference(model.concept_activations(images))
    branch = 2.0 * (branch - branch.mean(dim=-1, keepdim=True))
    torch.testing.assert_close(ours[:, [1, 3]] - reference[:, [1, 3]], branch[:, [1, 0]])


def test_concept_activation_is_sharpened_cosine(tiny_base):
    model = trained_model(tiny_base, beta=4.0)
    images = unit(3, 32)
    cosine = images @ F.normalize(model.visual_concepts, dim=-1).t()
    torch.testing.assert_close(model.concept_activations(images), torch.exp(-4.0 * (1 - cosine)))


def test_fit_learns_and_records_what_it_chose(tiny_base):
    data = datasets.DatasetDict({"train": colour_data(0), "validation": colour_data(1), "test": colour_data(2)})
    protocol = FewShotProtocol(data, k=8, seed=0, val_policy="fewshot_min(k,4)")
    model = hf_zsl.build("ccli", tiny_base, preset="embedded", class_names=protocol.train_class_names, num_concepts=16, top_k=4)
    info = ccli.fit(model, protocol.training_view(), FAST)
    assert info["beta"] in ccli.BETA_GRID and info["alpha"] in ccli.ALPHA_GRID
    assert (model.config.beta, model.config.alpha) == (info["beta"], info["alpha"])
    assert len(model.config.selected_concepts) == 16 and set(model.config.selected_concepts) <= set(shapes_concepts())
    assert info["val_accuracy"] > 0.9 and info["train_seconds"] > 0
    assert evaluate_protocol(model, protocol)["accuracy"] > 0.9


def with_domain(data: datasets.Dataset, domain: str) -> datasets.Dataset:
    return data.add_column("domain", [domain] * len(data))


def test_domain_generalisation_trains_on_the_source_and_evaluates_unchanged_on_targets(tiny_base):
    data = datasets.DatasetDict({
        "train": datasets.concatenate_datasets([with_domain(colour_data(0), "a"), with_domain(colour_data(3), "b")]),
        "validation": with_domain(colour_data(1), "a"),
        "test": datasets.concatenate_datasets([with_domain(colour_data(2), "a"), with_domain(colour_data(4), "b")]),
    })
    protocol = DomainShiftProtocol(data, "domain", ["a"], ["b"], k=8, seed=0)
    view = protocol.training_view()
    assert set(view.train["domain"]) == {"a"}
    model = hf_zsl.build("ccli", tiny_base, preset="embedded", class_names=view.train_class_names, num_concepts=16, top_k=4)
    ccli.fit(model, view, FAST)
    result = evaluate_protocol(model, protocol)
    assert set(result["domains"]) == {"a", "b"} and result["accuracy"] == result["domains"]["b"]
    assert result["source_accuracy"] > 0.9 and result["accuracy"] > 0.9
