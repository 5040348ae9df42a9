"""The Weaviate store's pure parts: row conversion (refusals as in the embedded store), names per project, and
error translation on a real, unconnected client (no server needed)."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

from lorag.index.protocol import IndexRow, IndexStoreError, RowMeta
from lorag.index.weaviate_schema import VECTOR, data_objects, object_uuid, protocol_name, weaviate_name
from lorag.index.weaviate_store import WeaviateStore

DIM = 8
# Weaviate's rule for class (and alias) names.
WEAVIATE_CLASS = re.compile(r"^[A-Z][_0-9A-Za-z]{0,254}$")


def row(chunk_id: str, vector: np.ndarray | None = None, text: str = "Hives are inspected weekly.") -> IndexRow:
    vec = np.full(DIM, 1 / np.sqrt(DIM), dtype=np.float32) if vector is None else vector
    return IndexRow(RowMeta(chunk_id, "docs/hives.md", "h1", "Hives", 0, len(text), 0, "rev1"), text, vec)


# -- rows ------------------------------------------------------------------------------------------------------
def test_rows_become_objects_with_a_deterministic_uuid_and_every_field():
    rows = [row("chunk-01"), row("1b4e28ba-2fa1-11d2-883f-0016d3cca427")]
    objects = data_objects(rows, DIM)
    assert [o.uuid for o in objects] == [object_uuid(r.meta.chunk_id) for r in rows]
    assert all(uuid.UUID(o.uuid) for o in objects)  # any chunk id maps to a valid object uuid
    assert object_uuid("chunk-01") == object_uuid("chunk-01") != object_uuid("chunk-02")
    props = objects[0].properties
    assert props["chunk_id"] == "chunk-01" and props["text"] == rows[0].text and props["ordinal"] == 0
    assert set(props) == {"chunk_id", "doc_id", "text_hash", "heading", "start", "end", "ordinal", "data_rev", "text"}
    np.testing.assert_array_equal(np.asarray(objects[0].vector[VECTOR], dtype=np.float32), rows[0].vector)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_vector_with_nan_or_inf_is_refused(bad):
    vector = np.full(DIM, 0.1, dtype=np.float32)
    vector[3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        data_objects([row("a"), row("b", vector)], DIM)


def test_duplicate_ids_in_one_batch_are_refused():
    with pytest.raises(ValueError, match="chunk_id a appears twice"):
        data_objects([row("a"), row("b"), row("a")], DIM)


def test_a_vector_of_another_dim_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="dim 8"):
        data_objects([row("a"), row("b", np.ones(DIM + 1, dtype=np.float32))], DIM)


# -- names -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lorag_docs", "lorag_docs_20261202_ab12", "x_", "a__b", "A" * 201])
def test_names_round_trip_within_a_project_and_are_valid_weaviate_class_names(name):
    for project in ("default", "mydocs", "team_a2", "p" * 40):
        wname = weaviate_name(name, project)
        assert WEAVIATE_CLASS.match(wname), wname
        assert protocol_name(wname, project) == name


def test_projects_never_see_each_others_collections():
    mine, theirs = weaviate_name("lorag_docs", "alpha"), weaviate_name("lorag_docs", "beta")
    assert mine != theirs
    assert protocol_name(theirs, "alpha") is None and protocol_name(mine, "beta") is None
    # A project that ends like another one is still another project.
    assert protocol_name(weaviate_name("docs", "team_alpha"), "alpha") is None
    assert protocol_name(weaviate_name("docs", "alpha"), "team_alpha") is None
    assert protocol_name("LoragState", "alpha") is None and protocol_name("Articles", "alpha") is None


def test_invalid_project_names_are_refused():
    for bad in ("my__docs", "docs_", "_docs", "my-docs"):
        with pytest.raises(ValueError, match="project name"):
            weaviate_name("lorag_docs", bad)


# -- client errors ---------------------------------------------------------------------------------------------
def test_store_is_a_context_manager_and_client_errors_come_out_as_one_line():
    import weaviate

    from lorag.index.weaviate_connect import client_options, derive_endpoint

    client = weaviate.WeaviateClient(**client_options(derive_endpoint("http://127.0.0.1:8080")))  # never connected
    with WeaviateStore(client, project="unit", hint="check WEAVIATE_URL") as store:
        assert store.project == "unit"
        for call in (
            store.list_collections,
            lambda: store.create_collection("docs", DIM),
            lambda: store.fetch_rows("docs", ["chunk-01"]),
            lambda: list(store.iter_rows("docs")),
            lambda: store.load_state("lorag_docs"),
        ):
            with pytest.raises(IndexStoreError) as err:
                call()
            assert "\n" not in str(err.value) and str(err.value).endswith("check WEAVIATE_URL")
