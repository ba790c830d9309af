"""The models the emulator serves besides the built-in LTX-2 19B video-to-video: their records, as data.

Sources, quoted where the record comes from:
- Seedance 2.0: the official Blender plugin's capture of the real `GET /models/model_bytedance-seedance-2-0`
  (github.com/scenario-labs/blender-plugin `tests/fixtures/models/model_bytedance-seedance-2-0.json`),
  inputs and `uiConfig.selects` verbatim; `exampleAssetIds` shortened, `complianceMetadata` and the empty
  `trainingProgress` left out (scenario-sdk 2.4.0's `Model` has no such field / requires `stage`).
- GPT Image 2: the same plugin's capture `model_openai-gpt-image-2.json` (an image model, so that the
  listing mixes kinds as the real one does), its inputs verbatim but `width`/`height` and `uiConfig`.
- LTX-2.3 22B video-to-video and LTX-2 Retake: Scenario's docs page generated "from model configurations"
  (docs.scenario.com/get-started/generation/video-generation/video-generation-lightricks, 2026-07-29):
  names, types, required, defaults, min/max and allowed values as its tables give them. What the tables do
  not show is written the way the built-in model's is (and marked so): `required` of the width/height pair
  as `ifDefined` each way ("Must be used with height"), `step` 64 for them ("Rounded to multiple of 64"),
  `step` 1 for whole numbers, `costImpact` on what prices a job (duration, resolution, size, steps).
- A FLUX LoRA row (`custom: false`): made up, so that the listing holds a model `generate/custom` cannot run.
"""

from __future__ import annotations

from typing import Any

SEEDANCE_ID = "model_bytedance-seedance-2-0"
LTX23_V2V_ID = "model_ltx-2-3-22b-video-to-video"
RETAKE_ID = "model_ltx-2-retake"
GPT_IMAGE_ID = "model_openai-gpt-image-2"
LORA_ID = "model_emulator-flux-lora"

_PAIR = "Explicit video {0} in pixels. Must be used with {1}. Rounded to multiple of 64."


def _base(model_id: str, name: str, capabilities: list[str], *, created_at: str, custom: bool = True,
          source: str = "other", model_type: str = "custom", short: str = "", tags: list[str] | None = None
          ) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": model_id, "name": name, "type": model_type, "custom": custom, "status": "trained",
        "source": source, "privacy": "public", "capabilities": capabilities, "tags": tags or [],
        "collectionIds": [], "exampleAssetIds": [], "trainingImagesNumber": 0, "parameters": {},
        "createdAt": created_at, "updatedAt": created_at,
    }
    if short:
        record["shortDescription"] = short
    return record


def _pair(name: str, other: str) -> dict[str, Any]:
    return {"name": name, "type": "number", "min": 64, "max": 4096, "step": 64, "costImpact": True,
            "description": _PAIR.format(name, other),
            "required": {"ifDefined": {other: {"message": f"{name} must be given together with {other}"}}}}


def _seed() -> dict[str, Any]:
    return {"name": "seed", "type": "number", "min": 0, "step": 1,
            "description": "Random seed for reproducibility. Leave blank for random."}


LTX23_V2V: dict[str, Any] = {
    **_base(LTX23_V2V_ID, "LTX-2.3 22b Video to Video", ["video2video"], created_at="2026-03-10T00:00:00.000Z",
            source="scenario", short="Transform videos with text prompts. Supports optional first-frame conditioning.",
            tags=["Lightricks", "LTX", "Video to Video"]),
    "inputs": [
        {"name": "prompt", "type": "string", "description": "Text prompt for video generation",
         "required": {"always": True}},
        {"name": "video", "type": "file", "kind": "video", "required": {"always": True},
         "description": "Reference video. The model generates output conditioned on this video's structure."},
        {"name": "videoStrength", "type": "number", "default": 1, "min": 0, "max": 1,
         "description": "Reference video conditioning strength (0-1). Higher = more faithful to input video "
                        "structure."},
        {"name": "image", "type": "file", "kind": "image",
         "description": "Optional first-frame image. Applied at frame 0 for additional conditioning."},
        {"name": "imageStrength", "type": "number", "default": 1, "min": 0, "max": 1,
         "description": "First-frame image conditioning strength (0-1)."},
        {"name": "resolution", "type": "string", "default": "auto", "costImpact": True,
         "allowedValues": ["auto", "720p", "1080p", "1440p", "2160p"],
         "description": "Video resolution. 'Match Input' replicates input video dimensions (recommended)."},
        _pair("width", "height"),
        _pair("height", "width"),
        {"name": "duration", "type": "number", "min": 3, "max": 20, "costImpact": True,
         "description": "Output video duration in seconds (3-20). Leave empty to match input video."},
        {"name": "aspectRatio", "type": "string", "default": "auto",
         "allowedValues": ["auto", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"],
         "description": "Video aspect ratio. 'Match Input' detects from input video (recommended)."},
        {"name": "fps", "type": "number", "min": 1, "max": 60,
         "description": "Output frame rate (1-60 fps). Leave empty to match input video."},
        {"name": "audioSource", "type": "string", "default": "original",
         "allowedValues": ["original", "generate", "none"],
         "description": "Audio for output: copy from input, generate new, or none."},
        {"name": "modality", "type": "string", "default": "none",
         "allowedValues": ["none", "canny", "depth", "pose", "detailer", "motion_track_control"],
         "description": "IC-LoRA control mode. The input video is preprocessed according to the selected "
                        "modality (canny extracts edges, depth estimates depth, pose detects skeletons, detailer "
                        "and motion_track_control are pass-through)."},
        {"name": "modalityStrength", "type": "number", "default": 1, "min": 0, "max": 2,
         "description": "Strength of IC-LoRA modality (0-2). Higher values = stronger control."},
        {"name": "conditioningAttentionStrength", "type": "number", "default": 1, "min": 0, "max": 1,
         "description": "How closely the model follows the reference video structure (0-1). Lower = more "
                        "creative freedom."},
        {"name": "conditioningVideo", "type": "file", "kind": "video",
         "description": "Override the default preprocessing by providing your own pre-processed video. If not "
                        "provided, the input video is automatically preprocessed using the selected modality."},
        {"name": "enhancePrompt", "type": "boolean", "default": True,
         "description": "Use Gemma to enhance the prompt for better video generation"},
        _seed(),
    ],
}

RETAKE: dict[str, Any] = {
    **_base(RETAKE_ID, "LTX-2 Retake", ["video2video"], created_at="2025-12-01T00:00:00.000Z", source="scenario",
            tags=["Lightricks", "LTX", "Video Editing"]),
    "inputs": [
        {"name": "video", "type": "file", "kind": "video", "description": "Input video to edit",
         "required": {"always": True}},
        {"name": "prompt", "type": "string", "description": "Text prompt describing the edit",
         "required": {"always": True}},
        {"name": "mode", "type": "string", "default": "replace_video",
         "allowedValues": ["replace_audio", "replace_video", "replace_audio_and_video"],
         "description": "Mode of operation"},
        {"name": "startTime", "type": "number", "default": 0, "min": 0,
         "description": "Start time of the edit in seconds"},
        {"name": "duration", "type": "number", "default": 6, "min": 2, "max": 16, "costImpact": True,
         "description": "Duration of the edited section in seconds"},
    ],
}

SEEDANCE: dict[str, Any] = {
    **_base(SEEDANCE_ID, "Seedance 2.0", ["txt2video", "img2video", "video2video"],
            created_at="2026-04-09T10:02:53.122Z",
            short="Seedance 2.0 by ByteDance: text, image, and video to video generation with up to 1080p output, "
                  "synced audio, and multi-reference support.",
            tags=["Bytedance", "First Frame", "I2V", "Last Frame", "Reference Images", "Seedance", "T2V", "V2V",
                  "Video", "Video Editing", "Video to Video", "sc:third-party"]),
    "updatedAt": "2026-08-13T07:21:52.845Z",
    "accessRestrictions": 50,
    "trainingImagePairs": [],
    "exampleAssetIds": ["asset_DzWoi3YBoFzzbMsWQwnrFC6Z", "asset_RFStpnfdFQCV3ewQUhdmVvuA"],
    "inputs": [
        {"description": "Text prompt for video generation. Use \"@\" such as \"@image1\" or \"@video1\" to quickly "
                        "reference selected images/videos. Prompt is optional if you provide a first frame or "
                        "reference images/videos.",
         "label": "Prompt", "maxLength": 6000, "name": "prompt", "costImpact": False, "prompt": True,
         "type": "string", "promptSpark": True},
        {"backgroundBehavior": "opaque",
         "description": "First frame image (frame mode). Mutually exclusive with reference images/videos.",
         "kind": "image", "label": "First Frame", "name": "image", "costImpact": False, "parent": True,
         "required": {"ifDefined": {"lastFrameImage": {
             "message": "A first frame must be provided if a last frame is set."}}},
         "type": "file"},
        {"backgroundBehavior": "opaque",
         "description": "Last frame image. Only valid when a first frame image is provided.",
         "kind": "image", "label": "Last Frame", "name": "lastFrameImage", "costImpact": False, "parent": True,
         "type": "file"},
        {"description": "Reference images for multimodal mode (up to 9). Mutually exclusive with first frame.",
         "kind": "image", "label": "Reference Images", "maxLength": 9, "name": "referenceImages",
         "costImpact": False, "parent": True, "type": "file_array"},
        {"description": "Reference videos for multimodal mode (up to 3). Mutually exclusive with first frame.",
         "kind": "video", "label": "Reference Videos", "maxLength": 3, "name": "referenceVideos",
         "costImpact": True, "parent": True, "type": "file_array"},
        {"description": "Reference audio tracks (up to 3). Requires at least one reference image or video.",
         "kind": "audio", "label": "Reference Audio", "maxLength": 3, "name": "referenceAudio",
         "costImpact": False, "parent": True, "type": "file_array"},
        {"allowedValues": [-1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
         "description": "Duration in seconds (4\u201315), or Auto: with reference videos, bill at the longest "
                        "reference clip length (clamped 4\u201315s).",
         "default": -1, "group": "Settings", "label": "Duration", "name": "duration", "costImpact": True,
         "type": "number"},
        {"allowedValues": ["480p", "720p", "1080p", "4k"], "description": "Output video resolution",
         "default": "720p", "group": "Settings", "label": "Resolution", "name": "resolution", "costImpact": True,
         "type": "string"},
        {"allowedValues": ["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"],
         "description": "Output aspect ratio", "default": "adaptive", "group": "Settings", "label": "Aspect Ratio",
         "name": "aspectRatio", "costImpact": False, "type": "string"},
        {"description": "Whether to generate audio for the video", "default": True, "group": "Settings",
         "label": "Generate Audio", "name": "generateAudio", "costImpact": False, "type": "boolean"},
    ],
    "uiConfig": {"selects": {
        "duration": {"4": "4s", "5": "5s", "6": "6s", "7": "7s", "8": "8s", "9": "9s", "10": "10s", "11": "11s",
                     "12": "12s", "13": "13s", "14": "14s", "15": "15s", "-1": "Auto"},
        "aspectRatio": {"16:9": "16:9", "21:9": "21:9", "4:3": "4:3", "1:1": "1:1", "adaptive": "Auto",
                        "3:4": "3:4", "9:16": "9:16"},
    }},
}

GPT_IMAGE: dict[str, Any] = {
    **_base(GPT_IMAGE_ID, "GPT Image 2", ["txt2img", "img2img"], created_at="2026-04-22T08:57:03.106Z",
            tags=["GPT-Image", "OpenAI", "editing", "sc:featured", "sc:third-party"]),
    "accessRestrictions": 25,
    "inputs": [
        {"description": "Text description of desired generation or edit.", "label": "Prompt", "maxLength": 32000,
         "name": "prompt", "costImpact": False, "prompt": True, "required": {"always": True}, "type": "string",
         "promptSpark": True},
        {"description": "Reference images for editing.", "kind": "image", "label": "Reference Images",
         "maxLength": 10, "name": "referenceImages", "costImpact": True, "parent": True,
         "required": {"ifDefined": {"mask": {"message": "A reference image is required when a mask is provided."}}},
         "type": "file_array"},
        {"backgroundBehavior": "opaque", "description": "Mask image for inpainting.", "kind": "image",
         "label": "Mask", "name": "mask", "costImpact": False, "parent": True, "type": "file",
         "maskFrom": "referenceImages"},
        {"description": "Number of images to generate", "default": 1, "group": "Settings", "label": "Image Count",
         "max": 10, "min": 1, "name": "numOutputs", "costImpact": True, "step": 1, "type": "number"},
        {"allowedValues": ["auto", "high", "medium", "low"], "description": "Generation quality", "default": "auto",
         "group": "Settings", "label": "Quality", "name": "quality", "costImpact": True, "type": "string"},
    ],
}

FLUX_LORA: dict[str, Any] = {
    **_base(LORA_ID, "Emulator FLUX LoRA", ["txt2img"], created_at="2025-06-01T00:00:00.000Z", custom=False,
            source="scenario", model_type="flux.1-lora"),
}

HOSTED: tuple[dict[str, Any], ...] = (LTX23_V2V, RETAKE, SEEDANCE, GPT_IMAGE, FLUX_LORA)
"""The public models besides the built-in one, in the order the public listing gives them."""
