"""One module per pose format ethoflow reads, in the style of sleap-io's ``io`` modules.

Each module reads its format only: ``read_<format>(path, ...)`` returns ``(keypoints
[T, A, K, 2], confidence [T, A, K], keypoint names, animal ids | None)`` (NWB adds the
file's fps); where the format allows, a sniff predicate and a header peek that reads no
frame. ``pose_io`` maps the format names of ``vocab.READABLE_POSE_FORMATS`` onto these
functions and does everything common to the formats (detection, names, :class:`Pose`).

- ``dlc``: DeepLabCut inference CSV (also LightningPose, which writes the DLC CSV layout)
  and h5;
- ``sleap``: SLEAP ``.slp`` (via sleap-io) and analysis h5, and picking the main tracks;
- ``calms21``: CalMS21 task-1 json;
- ``nwb``: NWB with ndx-pose ``PoseEstimation``.
"""
