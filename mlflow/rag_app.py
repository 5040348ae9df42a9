"""MLflow model-from-code: the whole lorag RAG app as one pyfunc (retrieve -> prompt -> generate -> citations).

predict(questions) -> one record per question: the answer, its cited sources resolved to `path > heading`
(a cited number that is not a passage of the context is listed under `invalid_citations`, never as a source),
the passages put in the prompt, and the token counts. Input: a list of strings, or a DataFrame / records with a
`question` column (what `mlflow models serve` hands over for {"inputs": [...]} or {"dataframe_records": [...]}).

The lorag package travels with the model (code_paths), so any environment with the pip requirements can load it.
model_config names what to read: the index backend and alias (`index_backend`, `index_name`; for LanceDB its
folder), the passages per prompt and the generation length. Artifacts: "adapter", "params" (the project's
params.yaml), and for the small demo model "base_model"; otherwise params names the base model.
NEVER add an __init__.py to this folder: a package named mlflow here would shadow the real one.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


def _questions(model_input: Any) -> list[str]:
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "columns"):  # a pandas DataFrame
        column = "question" if "question" in model_input.columns else model_input.columns[0]
        return [str(q) for q in model_input[column].tolist()]
    if isinstance(model_input, dict):
        value = model_input.get("question", model_input.get("questions"))
        return [value] if isinstance(value, str) else [str(q) for q in value]
    return [q["question"] if isinstance(q, dict) else str(q) for q in model_input]


class RagApp(PythonModel):
    """Retrieval from the published index + the base model with this version's adapter, loaded once."""

    def load_context(self, context: Any) -> None:
        from lorag.answer.generate import answer_model
        from lorag.config import load_params

        config = context.model_config or {}
        overrides = [f"index.backend={config['index_backend']}", f"index.name={config['index_name']}"]
        if config.get("lancedb_dir"):
            overrides.append(f"index.lancedb_dir={config['lancedb_dir']}")
        if "base_model" in context.artifacts:
            overrides.append(f"train.base_model={context.artifacts['base_model']}")
        self.params = load_params(context.artifacts["params"], overrides)
        self.top_k = int(config.get("rag_top_k") or self.params.search.top_k)
        self.max_new_tokens = int(config.get("rag_max_new_tokens") or self.params.evaluation.max_new_tokens)
        self.model = answer_model(self.params)
        self.model.add_adapter("served", context.artifacts["adapter"])

    # No type hints on predict: MLflow would turn them into a strict input schema; _questions reads every shape.
    def predict(self, context, model_input, params=None):
        from lorag.answer.ask import build_prompt, make_answer, retrieve

        top_k = int((params or {}).get("top_k") or self.top_k)
        out = []
        for question in _questions(model_input):
            hits = retrieve(self.params, question, top_k)
            gen = self.model.generate(build_prompt(question, hits), "served", self.max_new_tokens)
            answer = make_answer(question, "served", hits, True, gen).to_dict()
            answer["sources"] = [c["citation"] for c in answer["citations"] if c["valid"]]
            out.append(answer)
        return out


mlflow.models.set_model(RagApp())
