"""TF Serving's JSON <-> tensor rules (tensorflow/serving util/json_tensor.cc) and paths
(model_servers/http_rest_api_util.cc), by hand-made cases."""
import base64
import json

import numpy as np
import pytest

from colorize_tf.serving import rest_api

SPECS = {"serving_default": {"image_bytes": object, "temperature": np.float32},
         "one": {"x": np.int32}}


def test_paths_as_tf_serving_parses_them():
    # kPredictionApiGegex / kModelStatusApiRegex, case-insensitive.
    assert rest_api.parse_path("POST", "/v1/models/m:predict") == rest_api.Route("predict", "m")
    assert rest_api.parse_path("POST", "/V1/Models/m/versions/7:PREDICT") == \
        rest_api.Route("predict", "m", 7)
    assert rest_api.parse_path("GET", "/v1/models/m/versions/3/metadata") == \
        rest_api.Route("metadata", "m", 3)
    assert rest_api.parse_path("GET", "/v1/models/m/labels/stable") == \
        rest_api.Route("status", "m", None, "stable")
    for method, path in [("GET", "/v1/models/m:predict"), ("POST", "/v1/models/m"),
                         ("POST", "/v1/models/m/versions/x:predict"), ("GET", "/v1/models")]:
        with pytest.raises(rest_api.ApiError) as e:
            rest_api.parse_path(method, path)
        assert e.value.http_status == 400


def test_row_format_batches_instances():
    b64 = base64.b64encode(b"\x00\xffpng").decode()
    body = ('{"instances": [{"image_bytes": {"b64": "%s"}, "temperature": 0.5},'
            ' {"image_bytes": "plain", "temperature": 1}]}' % b64).encode()
    name, inputs, form = rest_api.parse_predict_body(body, SPECS)
    assert (name, form) == ("serving_default", rest_api.ROW)
    assert inputs["image_bytes"].tolist() == [b"\x00\xffpng", b"plain"]
    assert inputs["temperature"].dtype == np.float32
    assert inputs["temperature"].tolist() == [0.5, 1.0]


def test_columnar_format_and_a_single_input_plain_list():
    name, inputs, form = rest_api.parse_predict_body(
        b'{"signature_name": "one", "inputs": [[1, 2], [3, 4]]}', SPECS)
    assert (name, form) == ("one", rest_api.COLUMNAR)
    np.testing.assert_array_equal(inputs["x"], [[1, 2], [3, 4]])
    assert rest_api.parse_predict_body(b'{"signature_name": "one", "instances": [5, 6]}',
                                       SPECS)[1]["x"].tolist() == [5, 6]


@pytest.mark.parametrize("body,message", [
    (b"", "The document is empty"),
    (b"{nope", "JSON Parse error"),
    (b"[1]", "Is not object"),
    (b'{"signature_name": 3, "inputs": 1}', "'signature_name' key must be a string"),
    (b'{"signature_name": "x", "inputs": 1}', 'signature name: "x" not found'),
    (b'{"instances": [], "inputs": {}}', "expecting only one of 'inputs' or 'instances'"),
    (b'{"instances": []}', "No values in 'instances' array"),
    (b'{"instances": 4}', "Expecting 'instances' to be an list/array"),
    (b'{}', "Missing 'inputs' or 'instances' key"),
    (b'{"instances": [1]}', "instances is a plain list"),
    (b'{"instances": [{"image_bytes": "a"}]}', "keys must be equal to"),
    (b'{"instances": [{"image_bytes": "a", "temperature": 1, "z": 1}]}',
     "does not have named input: z"),
    (b'{"instances": [{"image_bytes": {"b64": "!!"}, "temperature": 1}]}',
     "Unable to base64 decode"),
    (b'{"instances": [{"image_bytes": "a", "temperature": "hot"}]}', "is not of expected type"),
    (b'{"inputs": {"image_bytes": ["a"]}}', "Missing named input: temperature"),
    (b'{"signature_name": "one", "inputs": [[1, 2], [3]]}', "unexpected size: 1"),
    (b'{"signature_name": "one", "inputs": [[1, 2], 3]}', "incorrect level"),
    (b'{"signature_name": "one", "inputs": [1.5]}', "is not of expected type: int32"),
    (b'{"signature_name": "one", "inputs": [true]}', "is not of expected type: int32"),
    (b'{"signature_name": "one", "inputs": [4294967296]}', "is not of expected type: int32"),
    (b'{"signature_name": "one", "instances": [[1], [1, 2]]}', "Expecting shape [1] but"),
])
def test_bad_bodies_are_invalid_argument(body, message):
    with pytest.raises(rest_api.ApiError) as e:
        rest_api.parse_predict_body(body, SPECS)
    assert e.value.code == "INVALID_ARGUMENT" and e.value.http_status == 400
    assert message in e.value.message


def test_responses_in_the_request_format():
    def answer(outputs, form):
        text = rest_api.predict_response(outputs, form)
        document = json.loads(text)
        # compact JSON, as json.dumps writes it (a client may compare bytes)
        assert text == json.dumps(document, ensure_ascii=False,
                                  separators=(",", ":")).encode("utf-8")
        return document
    outputs = {"colorized_png_bytes": np.array([b"\x89P", b"\x00"], object),
               "score": np.array([[1.5], [2.0]], np.float32)}
    row = answer(outputs, rest_api.ROW)
    assert row == {"predictions": [
        {"colorized_png_bytes": {"b64": base64.b64encode(b"\x89P").decode()}, "score": [1.5]},
        {"colorized_png_bytes": {"b64": "AA=="}, "score": [2.0]}]}
    columnar = answer(outputs, rest_api.COLUMNAR)
    assert columnar == {"outputs": {"colorized_png_bytes": [{"b64": "iVA="}, {"b64": "AA=="}],
                                    "score": [[1.5], [2.0]]}}
    # One output: its values directly; a string output without "_bytes" stays a string
    # (invalid UTF-8 replaced); rows of several strings; a 0-d output in columns.
    assert answer({"label": np.array([b"sky", b"\xffa\""], object)}, rest_api.ROW) == \
        {"predictions": ["sky", "\ufffda\""]}
    assert answer({"pair_bytes": np.array([[b"\x01", b""]], object)}, rest_api.COLUMNAR) == \
        {"outputs": [[{"b64": "AQ=="}, {"b64": ""}]]}
    assert answer({"n": np.array(3, np.int64), "t": np.array(b"x", object)},
                  rest_api.COLUMNAR) == {"outputs": {"n": 3, "t": "x"}}
    assert answer({"score": np.zeros((0, 2), np.float32)}, rest_api.ROW) == {"predictions": []}
    with pytest.raises(rest_api.ApiError, match="inconsistent batch size"):
        rest_api.predict_response({"a": np.zeros(2), "b": np.zeros(3)}, rest_api.ROW)
    with pytest.raises(rest_api.ApiError, match="has no shape information"):
        rest_api.predict_response({"a": np.zeros(2), "b": np.float32(1)}, rest_api.ROW)
