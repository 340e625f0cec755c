#!/usr/bin/env python3
"""Checks an Argo Workflows manifest against Argo's own schema, offline: hera's models, which are
generated from Argo's OpenAPI definitions, validate every field's type, and this script adds
what they leave out, refusing any field the schema does not have (a misspelt `retryStrategy`
is otherwise silently ignored by a YAML parser, and by Argo's).

    check_argo_workflow.py WORKFLOW.yaml

Exits 0 when the manifest is a valid Workflow, 1 with each problem (its path) otherwise.
"""

import sys
import typing

import pydantic
import yaml
from hera.workflows.models import Workflow


def shapes(annotation):
    """How an annotation holds pydantic models: ("one", M), ("list", M) or ("dict", M), through
    Optional, Union and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [("one", annotation)]
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return [("list", model) for _, model in shapes(arguments[0])]
    if origin is dict:
        return [("dict", model) for _, model in shapes(arguments[1])]
    return [shape for argument in arguments for shape in shapes(argument)]


def unknown_fields(model, data, path, problems):
    """Every key of `data` (and of its nested objects) that `model` has no field for."""
    if not isinstance(data, dict) or getattr(model, "__pydantic_root_model__", False):
        return
    fields = {}
    for name, field in model.model_fields.items():
        fields[field.alias or name] = field
        fields[name] = field
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            problems.append(f"{path}.{key}: Argo's {model.__name__} has no such field")
            continue
        for shape, nested in shapes(field.annotation):
            if shape == "one":
                unknown_fields(nested, value, f"{path}.{key}", problems)
            elif shape == "list" and isinstance(value, list):
                for index, item in enumerate(value):
                    unknown_fields(nested, item, f"{path}.{key}[{index}]", problems)
            elif shape == "dict" and isinstance(value, dict):
                for name, item in value.items():
                    unknown_fields(nested, item, f"{path}.{key}.{name}", problems)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as file:
        documents = [d for d in yaml.safe_load_all(file) if d is not None]
    problems = []
    for number, document in enumerate(documents):
        path = f"document {number}"
        if document.get("kind") != "Workflow":
            problems.append(f"{path}: kind is {document.get('kind')!r}, not Workflow")
            continue
        try:
            Workflow.model_validate(document)
        except pydantic.ValidationError as error:
            problems.extend(f"{path}: {line}" for line in str(error).splitlines())
        unknown_fields(Workflow, document, path, problems)
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"{sys.argv[1]}: a valid Argo Workflow ({len(documents)} document)")


if __name__ == "__main__":
    main()
