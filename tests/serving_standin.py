"""Local STAND-INS for TF Serving, for tests only.

The TF Serving binary (tensorflow_model_server / its docker image) cannot be
installed on the machines these tests run on, so these servers implement the
parts of TF Serving's public APIs that pdl-predict uses, over the exported
SavedModel:
  * REST: POST /v1/models/NAME[/versions/N]:predict with the row
    ("instances") or columnar ("inputs") JSON format, {"b64": ...} for
    binary inputs (names ending in _bytes), answering {"predictions": [...]}
    or {"outputs": {...}}, and {"error": message} with HTTP 400 on a bad
    request; GET /v1/models/NAME answers the model status.
  * gRPC: tensorflow.serving.PredictionService/Predict.
They are not TF Serving: batching, model versions policies, monitoring and
the C++ runtime are not exercised.
"""

import base64
import concurrent.futures
import http.server
import json
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


def _decode(value):
  if isinstance(value, dict) and set(value) == {'b64'}:
    return base64.b64decode(value['b64'])
  if isinstance(value, list):
    return [_decode(v) for v in value]
  return value


def _jsonable(array):
  if array.dtype == object:
    return [v.decode() for v in array.tolist()]
  return array.tolist()


class RestStandIn:
  """Threaded HTTP server at http://127.0.0.1:PORT with TF Serving's REST
  predict API for one model name."""

  def __init__(self, saved_model_dir, model_name):
    self.signatures = tf.saved_model.load(saved_model_dir).signatures
    self.model_name = model_name
    self.requests = 0
    standin = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def log_message(self, *args):
        pass

      def _answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def do_GET(self):  # pylint: disable=invalid-name
        if self.path.rstrip('/') == f'/v1/models/{model_name}':
          self._answer(200, {'model_version_status': [
              {'version': '1', 'state': 'AVAILABLE',
               'status': {'error_code': 'OK', 'error_message': ''}}]})
        else:
          self._answer(404, {'error': f'Servable not found: {self.path}'})

      def do_POST(self):  # pylint: disable=invalid-name
        pattern = rf'/v1/models/{model_name}(/versions/\d+)?:predict$'
        if not re.match(pattern, self.path):
          self._answer(404, {'error': f'Servable not found: {self.path}'})
          return
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        standin.requests += 1
        try:
          self._answer(200, standin.predict(body))
        except (tf.errors.InvalidArgumentError, ValueError, TypeError,
                KeyError) as e:
          message = getattr(e, 'message', None) or str(e)
          self._answer(400, {'error': message})

    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = (f'http://127.0.0.1:{self._server.server_port}/v1/models/'
                f'{model_name}')
    self.address = f'127.0.0.1:{self._server.server_port}'
    threading.Thread(target=self._server.serve_forever, daemon=True).start()

  def predict(self, body):
    signature = self.signatures[body.get('signature_name',
                                         'serving_default')]
    names = list(signature.structured_input_signature[1])
    if 'instances' in body:
      rows = body['instances']
      if len(names) == 1 and not (rows and isinstance(rows[0], dict) and
                                  names[0] in rows[0]):
        rows = [{names[0]: row} for row in rows]
      inputs = {n: [_decode(row[n]) for row in rows] for n in names}
    else:
      inputs = body['inputs']
      inputs = ({names[0]: _decode(inputs)} if not isinstance(inputs, dict)
                else {n: _decode(v) for n, v in inputs.items()})
    spec = signature.structured_input_signature[1]
    tensors = {n: tf.constant(v, dtype=spec[n].dtype)
               for n, v in inputs.items()}
    outputs = {k: v.numpy() for k, v in signature(**tensors).items()}
    if 'instances' in body:
      count = len(body['instances'])
      return {'predictions': [{k: _jsonable(v[i]) for k, v in outputs.items()}
                              for i in range(count)]}
    return {'outputs': {k: _jsonable(v) for k, v in outputs.items()}}

  def close(self):
    self._server.shutdown()
    self._server.server_close()


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, signatures, model_name):
    self.signatures, self.model_name = signatures, model_name

  def Predict(self, request, context):  # pylint: disable=invalid-name
    if request.model_spec.name != self.model_name:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f'Servable not found: {request.model_spec.name}')
    signature = self.signatures[request.model_spec.signature_name or
                                'serving_default']
    inputs = {k: tf.constant(tf.make_ndarray(v))
              for k, v in request.inputs.items()}
    try:
      outputs = signature(**inputs)
    except tf.errors.InvalidArgumentError as e:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
    response = predict_pb2.PredictResponse()
    for key, value in outputs.items():
      response.outputs[key].CopyFrom(tf.make_tensor_proto(
          np.asarray(value.numpy())))
    return response


class GrpcStandIn:
  """gRPC server at 127.0.0.1:PORT with TF Serving's PredictionService."""

  def __init__(self, saved_model_dir, model_name):
    signatures = tf.saved_model.load(saved_model_dir).signatures
    self._server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=2),
        options=[('grpc.max_send_message_length', 1 << 30)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _Servicer(signatures, model_name), self._server)
    port = self._server.add_insecure_port('127.0.0.1:0')
    self._server.start()
    self.address = f'127.0.0.1:{port}'

  def close(self):
    self._server.stop(None)
