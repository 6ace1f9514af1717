{
  "targets": [
    {
      "target_name": "dropzone_md5",
      "sources": ["md5.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
