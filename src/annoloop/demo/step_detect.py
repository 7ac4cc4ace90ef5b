"""Demo step: a real detector (MTCNN faces) over bundled photos and a generated pan video,
boxes stored as predictions, video boxes linked into tracks, media stamped."""

from __future__ import annotations

from typing import Any


def run(ctx: Any) -> str:
    """Detect faces in the portraits and a short video; returns a one-line summary."""
    from pathlib import Path

    import annoloop.detect as detect
    from annoloop.detect.synthetic import make_video

    images = ctx.project.images()
    ids, locations = images["id"].tolist(), images["location"].tolist()
    names = {Path(str(loc)).name: int(i) for i, loc in zip(ids, locations, strict=True)}
    wanted = [n for n in ("astronaut.png", "grace_hopper.jpg", "coffee.png") if n in names]
    sources = [str(ctx.project.image_location(names[n])) for n in wanted]
    video = make_video(ctx.folder / "videos" / "astronaut_pan.mp4", 16, 192, 144)
    out = ctx.folder / "detections"
    report = detect.run(
        "mtcnn", [*sources, str(video)], project=ctx.project, img_max_side=320, batch_size=8,
        keep_threshold=0.9, device="cpu", out_csv=out / "faces.csv",
        out_coco=out / "faces.coco.json",
    )  # fmt: skip
    s = report.summary()
    ctx.made["detect"] = s
    photos = [r for r in report.results if r.kind == "image"]
    vid = next(r for r in report.results if r.kind == "video")
    faces = ", ".join(f"{Path(r.media).name}: {r.n_boxes}" for r in photos)
    return (
        f"MTCNN faces in photos ({faces}); video: {vid.n_boxes} faces on "
        f"{vid.frames_processed} frames linked into {vid.n_tracks} track(s) at "
        f"{vid.fps():.1f} frames/s; {s['predictions']} predictions stored, "
        f"{s['processed']} media stamped (COCO: {out.name}/faces.coco.json)"
    )
