package com.dsxir.checkpoint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A tuple: a fixed-size ordered sequence, distinct from a list. It maps to a Term's {@code
 * tuple_value}; a {@link List} maps to {@code list_value}. Its items may be null (a {@code
 * null_value}); the tuple cannot be changed.
 *
 * @param items the items, in order
 */
public record TermTuple(List<Object> items) {
  /** A tuple of the given items (copied; nulls allowed). */
  public TermTuple(List<Object> items) {
    Objects.requireNonNull(items, "a TermTuple's items must not be null");
    this.items = Collections.unmodifiableList(new ArrayList<>(items));
  }

  /** A tuple of the given items, e.g. {@code TermTuple.of(new Atom("ok"), 42L)}. */
  public static TermTuple of(Object... items) {
    return new TermTuple(Arrays.asList(items));
  }

  /** The number of items. */
  public int size() {
    return items.size();
  }

  /** The item at {@code index}. */
  public Object get(int index) {
    return items.get(index);
  }
}
