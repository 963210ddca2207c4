{
  "targets": [
    {
      "target_name": "rdmaq",
      "sources": ["native/addon.cc", "native/test_support.cc", "native/bench.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').gyp\")"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "libraries": ["<!@(pkg-config --libs libfabric)"],
      "cflags": ["<!@(pkg-config --cflags libfabric)"]
    }
  ]
}
