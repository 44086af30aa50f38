package com.dsxir.checkpoint;

import java.util.ArrayList;
import java.util.List;

/**
 * A refusal of a Term on its way up the Term tree: each level prepends its part of the path.
 * {@code rule} is the id of the broken rule of the format, or null for a value that breaks none
 * (no Term form, a lone surrogate in a Java value).
 */
final class TermRefusal extends Exception {
  private static final long serialVersionUID = 1L;
  private final String rule;
  private final String detail;
  private final transient List<String> parts = new ArrayList<>();

  TermRefusal(String rule, String detail) {
    super(detail, null, false, false);
    this.rule = rule;
    this.detail = detail;
  }

  /** This refusal, its path now going through {@code part} below the parts added before. */
  TermRefusal at(String part) {
    parts.add(part);
    return this;
  }

  /** The path of the offending value, from {@code root}. */
  String path(String root) {
    StringBuilder path = new StringBuilder(root);
    for (int i = parts.size() - 1; i >= 0; i--) {
      path.append(parts.get(i));
    }
    return path.toString();
  }

  /** This refusal as a reader reports it, its path from {@code root}. */
  ResumeMismatch toMismatch(String root) {
    return ResumeMismatch.shape(rule, path(root), detail);
  }

  /** This refusal as a writer reports it, its path from {@code root}. */
  InvalidCheckpoint toInvalid(String root) {
    return new InvalidCheckpoint(path(root), detail, rule);
  }
}
