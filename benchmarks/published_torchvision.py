"""Every torchvision classification model's published figures against the tracer.

torchvision's weights metadata publishes ``num_params`` and ``_ops`` (GFLOPS: conv + linear +
matmul MACs in G, rounded to 3 decimals) at each weights' evaluation size. This builds each
model on the meta device, traces it at (1, 3, S, S) with S the weights' ``min_size``-compatible
evaluation crop, and compares. Needs an importable torchvision (the tests never import it):

    python benchmarks/published_torchvision.py [--shim /work/shared] > published.md
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shim", help="directory holding tvshim.py, imported before torchvision")
    args = parser.parse_args()
    if args.shim:
        sys.path.insert(0, args.shim)
        import tvshim  # noqa: F401
    import torchvision

    from blockprof.counting.trace import trace
    from blockprof.models import build_meta_model

    rows = []
    names = torchvision.models.list_models(module=torchvision.models)
    for name in names:
        weights = list(torchvision.models.get_model_weights(name))
        w = weights[0]
        meta = w.meta
        size = w.transforms().crop_size[0] if hasattr(w.transforms(), "crop_size") else 224
        # the model as its weights ship it: ViTs at their evaluation size; GoogLeNet's weights drop
        # its two auxiliary classifiers (Inception-v3's keep theirs, and its published count has them)
        kwargs: dict[str, object] = {"image_size": size} if name.startswith("vit_") else {}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=False)
        start = time.perf_counter()
        try:
            # as `blockprof model` builds it: on meta, or on the CPU when the constructor reads values (RegNet)
            model = build_meta_model(lambda name=name, kwargs=kwargs: torchvision.models.get_model(name, **kwargs))
            t = trace(model, (1, 3, size, size), train=False)
            params, gmacs, unknown, error = t.params, t.macs / 1e9, t.unknown_ops, ""
        except Exception as e:  # recorded, and the sweep goes on
            params, gmacs, unknown, error = None, None, {}, f"{type(e).__name__}: {str(e).splitlines()[0]}"
        seconds = time.perf_counter() - start
        ok_params = params == meta["num_params"]
        ok_ops = gmacs is not None and round(gmacs, 3) == meta["_ops"]
        rows.append(
            (
                name,
                w.name,
                size,
                meta["num_params"],
                params,
                meta["_ops"],
                gmacs,
                ok_params,
                ok_ops,
                unknown,
                error,
                seconds,
            )
        )
        print(
            f"{name:28} {size:4} params {'=' if ok_params else '≠'} ops {'=' if ok_ops else '≠'} "
            f"{meta['_ops']} vs {gmacs if gmacs is None else round(gmacs, 4)} {unknown or ''} {error} ({seconds:.1f}s)",
            file=sys.stderr,
        )
    print("| model | weights | input | published params | traced | published GFLOPS | traced GMACs | match |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    for name, wname, size, pp, tp, po, to, okp, oko, unknown, error, _ in rows:
        mark = "✓" if okp and oko else ("params ✗ " if not okp else "") + ("ops ✗" if not oko else "")
        traced = "-" if to is None else f"{to:.4f}"
        note = f" ({error})" if error else (f" (unknown ops: {unknown})" if unknown else "")
        params = "-" if tp is None else f"{tp:,}"
        print(f"| {name} | {wname} | {size} | {pp:,} | {params} | {po} | {traced} | {mark}{note} |")
    both = sum(1 for r in rows if r[7] and r[8])
    print(
        f"\n{both} of {len(rows)} models match both published figures exactly; "
        f"{sum(r[7] for r in rows)} match params, {sum(r[8] for r in rows)} match GFLOPS."
    )


if __name__ == "__main__":
    main()
