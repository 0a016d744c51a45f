"""``declared_training_data``: the data sets a model card's front matter declares, for reports."""

from __future__ import annotations

import pytest

from spart.encoders.loading import declared_training_data


def _card(tmp_path, text):
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_datasets_list_of_the_front_matter_in_order(tmp_path):
    card = (
        "---\nlanguage: en\ndatasets:\n- ms_marco\n- trivia_qa\n- embedding-data/PAQ_pairs\ntags: [x]\n---\n# Model\n"
    )
    assert declared_training_data(_card(tmp_path, card)) == ("ms_marco", "trivia_qa", "embedding-data/PAQ_pairs")
    assert declared_training_data(str(tmp_path)) == ("ms_marco", "trivia_qa", "embedding-data/PAQ_pairs")


def test_a_single_dataset_written_as_a_string(tmp_path):
    assert declared_training_data(_card(tmp_path, "---\ndatasets: squad\n---\n")) == ("squad",)


@pytest.mark.parametrize(
    "text",
    [
        "# A card without front matter\n\ndatasets:\n- ms_marco\n",  # a list in the body is not a declaration
        "---\nlanguage: en\n---\n",  # front matter without datasets
        "---\ndatasets:\n- a\n",  # front matter never closed
        "---\ndatasets: [a, b\n---\n",  # malformed YAML
        "---\n- just\n- a list\n---\n",  # front matter that is not a mapping
        "---\ndatasets: {a: 1}\n---\n",  # datasets that is not a list
    ],
)
def test_no_declaration_is_an_empty_tuple_not_an_error(tmp_path, text):
    assert declared_training_data(_card(tmp_path, text)) == ()


def test_no_card_a_missing_directory_and_a_hub_id_declare_nothing(tmp_path):
    assert declared_training_data(tmp_path) == ()
    assert declared_training_data(tmp_path / "absent") == ()
    assert declared_training_data("some-org/some-model") == ()  # never fetched


def test_the_packaged_minilm_declares_trivia_and_paq(minilm_dir):
    declared = declared_training_data("minilm")
    assert declared == declared_training_data(minilm_dir)
    assert {"trivia_qa", "search_qa", "embedding-data/PAQ_pairs"} <= set(declared)
