{
  "targets": [
    {
      "target_name": "longner_native",
      "sources": ["src/binding.c", "src/kernels.c"],
      "cflags_c": ["-std=c11", "-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lgomp"]
    }
  ]
}
