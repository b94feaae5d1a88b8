"""The one query request: every caller validates through the same models, and the API's schema comes from them."""

import pytest

from cxrneo.api.uploads import body_schema as _body_schema
from cxrneo.errors import InputError
from cxrneo.retrieval.method import Method
from cxrneo.service.request import ImageQuery, QueryOptions, QueryRequest, from_form, parse, to_form


def test_options_survive_the_multipart_form_round_trip() -> None:
    opts = QueryOptions(k=7, method=Method.KNN, strict=True)
    fields = to_form(opts)
    assert fields == {"k": "7", "method": "knn", "strict": "true"}  # text, as a browser form sends them
    assert from_form(fields) == opts
    assert from_form({}) == QueryOptions()


@pytest.mark.parametrize(("data", "message"), [
    ({"k": "0"}, "k: Input should be greater than or equal to 1"),
    ({"k": "ten"}, "k: Input should be a valid integer"),
    ({"method": "magic"}, "method: Input should be"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"exclude_patient": "true"}, "exclude_patient needs a stored image id"),
    ({"k": "{not json"}, "k: not valid JSON"),
])
def test_a_bad_form_field_is_one_line_naming_it(data: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as e:
        from_form(data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_json_request_needs_exactly_one_target() -> None:
    assert parse(QueryRequest, {"id": "a", "k": 3}).k == 3
    for bad in ({}, {"id": "a", "code": [1.0]}, {"code": [1.0], "exclude_patient": True}):
        with pytest.raises(InputError):
            parse(QueryRequest, bad)


def test_the_openapi_bodies_are_generated_from_the_models() -> None:
    """A field of QueryOptions appears in both the JSON and the multipart schema, with its bounds."""
    content = _body_schema(json=QueryRequest, form=ImageQuery)["requestBody"]["content"]
    as_json = content["application/json"]["schema"]["properties"]
    as_form = content["multipart/form-data"]["schema"]["properties"]
    for name in QueryOptions.model_fields:
        assert name in as_json and name in as_form
    assert as_json["k"]["maximum"] == as_form["k"]["maximum"] == 1000
    assert as_form["file"]["format"] == "binary" and "id" not in as_form
    assert as_json["method"]["enum"] == [m.value for m in Method]  # references inlined
    assert "$ref" not in repr(content)
