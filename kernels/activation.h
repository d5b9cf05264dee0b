// Element-wise activations of a plain (not gated) MLP, named once for every backend.
#pragma once

namespace ropewire::kernels {

enum class ActivationKind {
  kGelu,       // exact: 0.5 x (1 + erf(x / sqrt 2))
  kGeluTanh,   // gelu_new / gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  kBloomGelu,  // BLOOM's truncated constant: 0.5 x (1 + tanh(0.79788456 x (1 + 0.044715 x^2)))
  kRelu,
  kSilu,
};

}  // namespace ropewire::kernels
