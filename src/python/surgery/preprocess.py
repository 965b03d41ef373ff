"""Image loading and preprocessing, number for number as pycaffe's
``caffe.io.load_image`` and ``caffe.io.Transformer`` do it (transpose,
channel swap, raw scale, mean, input scale), without pycaffe."""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .atomic_files import checked_name, open_regular_file, read_npy
from .errors import FileError, ParseError, PreprocessingWarning, ShapeError
from .memory_budget import array_bytes, check_memory

if TYPE_CHECKING:
    import PIL.Image

ImageLike = Union[str, "os.PathLike[str]", np.ndarray]
MeanLike = Union[None, Sequence[float], np.ndarray, str, "os.PathLike[str]"]


# Bytes per value while a file is decoded: Pillow's pixels and numpy's copy
# of them (up to 2, a palette's indices included), skimage's float64 copy
# (8), our float32 copy (4), then the transposed and scaled copies of
# preprocessing (4 + 4). Measured: 12 per value at the peak of preprocess()
# for 3000x3000 RGB, palette and 16-bit grey PNGs and a palette GIF.
DECODE_BYTES_PER_VALUE = 22


@contextlib.contextmanager
def _pillow_errors(name: str) -> Iterator[None]:
    """Pillow's errors, opening or decoding, as FileError or ShapeError
    naming the file."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb limit is a fixed pixel count; the memory
            # limit decides here (check_image_memory), so only its hard
            # error (twice that count) is left to stop an open.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError as error:
        raise ShapeError(f"image {name!r}: {error}") from error
    except Image.UnidentifiedImageError as error:
        # Pillow's own text names the file object, not the file.
        raise FileError(f"cannot read image {name!r}: not a format Pillow reads (PNG, JPEG, "
                        "TIFF, BMP, ...), or a damaged file") from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # Pillow's header, data errors
        raise FileError(f"cannot read image {name!r}: {error}") from error


def _open_image(file: BinaryIO, name: str) -> "PIL.Image.Image":
    """Pillow's image of `file`: the first frame's header read, nothing decoded."""
    from PIL import Image
    with _pillow_errors(name):
        return Image.open(file)


def _check_tiles(image: "PIL.Image.Image", file: BinaryIO, name: str) -> None:
    """Refuses a frame whose strips or tiles start past the file's end.
    Pillow reads each one up to where the next starts, in one read: a 1 KB
    TIFF whose next offset says 4 GiB has Python allocate 4 GiB for it. With
    every offset within the file, no read asks for more than the file holds."""
    size = os.fstat(file.fileno()).st_size
    if any(tile[2] > size for tile in image.tile):
        raise FileError(f"cannot read image {name!r}: its pixel data is said to lie past the "
                        f"file's end ({size} bytes): a damaged or truncated file")


def check_finite(array: np.ndarray, what: str) -> None:
    """Refuses NaN or infinite values, which no image or mean can mean and
    which would spread into every score."""
    if not np.isfinite(array).all():
        raise ShapeError(f"{what} holds NaN or infinite values")


def _size(image: "PIL.Image.Image") -> Tuple[int, int, int]:
    """(height, width, bands) of the first frame as decoded: a palette
    image has its palette's bands (GIF, PNG-8)."""
    from PIL import Image
    width, height = image.size
    mode = image.palette.mode if image.mode == "P" and image.palette else image.mode
    return height, width, Image.getmodebands(mode)


def image_size(file: BinaryIO, name: str) -> Tuple[int, int, int]:
    """(height, width, bands) of the file's first frame, the one load_image
    decodes, from its header; nothing is decoded."""
    try:
        with _open_image(file, name) as image:
            return _size(image)
    finally:
        file.seek(0)


def _first_frame(image: "PIL.Image.Image") -> np.ndarray:
    """The first frame's pixels as skimage.io.imread (pycaffe's load_image)
    gets them through imageio's Pillow plugin for a still image: a palette
    applied, a 16-bit grey PNG as uint16. Only this frame is decoded: an
    animated GIF or PNG would otherwise be stacked whole, every frame (a
    few KB each when compressed) as large as the first, when one image is
    what a forward takes. Pillow opens a file at its first frame."""
    if image.mode == "P":
        image = image.convert(image.palette.mode)
    elif image.format == "PNG" and image.mode == "I":
        image = image.convert("I;16")
    return np.asarray(image)


def load_image(path, color: bool = True) -> np.ndarray:
    """An image file as float32 H x W x C in [0, 1], RGB; as caffe.io.load_image.
    A file of several frames (animated GIF or PNG, multi-page TIFF) gives its
    first.

    Only a regular file is read, and the first frame's size (from the
    header) is checked against the memory limit before anything is decoded;
    the frame checked is the one decoded (one parse of the file)."""
    from skimage.color import rgb2gray, rgba2rgb
    name = os.fspath(path)
    with open_regular_file(path) as file, _open_image(file, name) as image:
        height, width, bands = _size(image)
        check_image_memory(height, width, max(bands, 3 if color else 1),
                           DECODE_BYTES_PER_VALUE, repr(name))
        _check_tiles(image, file, name)
        with _pillow_errors(name):
            raw = _first_frame(image)
    if not color and raw.ndim == 3:  # skimage.io.imread's as_gray
        try:
            raw = rgb2gray(rgba2rgb(raw) if raw.shape[2] == 4 else raw)
        except ValueError as error:
            raise FileError(f"cannot read image {name!r} as grey: {error}") from error
    img = scaled(raw, repr(name))
    check_finite(img, f"image {name!r}")
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
        if color:
            img = np.tile(img, (1, 1, 3))
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return img


def resize_image(im: np.ndarray, new_dims: Tuple[int, int], interp_order: int = 1) -> np.ndarray:
    """pycaffe's caffe.io.resize_image: H x W x K to new_dims, bilinear."""
    from scipy.ndimage import zoom
    from skimage.transform import resize
    if im.shape[-1] == 1 or im.shape[-1] == 3:
        im_min, im_max = im.min(), im.max()
        if im_max > im_min:
            im_std = (im - im_min) / (im_max - im_min)
            resized_std = resize(im_std, new_dims, order=interp_order, mode="constant")
            resized_im = resized_std * (im_max - im_min) + im_min
        else:
            resized_im = np.empty((new_dims[0], new_dims[1], im.shape[-1]), dtype=np.float32)
            resized_im.fill(im_min)
    else:
        scale = tuple(np.array(new_dims, dtype=float) / np.array(im.shape[:2]))
        resized_im = zoom(im, scale + (1,), order=interp_order)
    return resized_im.astype(np.float32)


def check_image_memory(height: int, width: int, channels: int,
                       bytes_per_value: int = 12, name: str = "an image") -> None:
    """Refuse an image whose copies would not fit the memory limit; by default
    three float32 copies (loaded, transposed, scaled)."""
    check_memory(array_bytes((height, width, channels), bytes_per_value),
                 f"preprocessing {name} of {height}x{width}x{channels} values",
                 "give a smaller image, or save it as .npy or TIFF, which a tiled "
                 "forward reads a region at a time")


def check_size(size) -> Tuple[int, int]:
    """`size` as two positive ints (H, W)."""
    try:
        h, w = size
        if int(h) != h or int(w) != w or h < 1 or w < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ShapeError(f"size must be two positive integers (H, W), not {size!r}") from None
    return int(h), int(w)


def scaled(array: np.ndarray, name: str = "the image") -> np.ndarray:
    """The one scaling rule, for arrays and files alike (as pycaffe's
    load_image, through skimage's img_as_float): unsigned integers are
    divided by their type's maximum (uint8 by 255, uint16 by 65535), so
    they land in [0, 1]; bool is 0 or 1; floats are taken as they are.
    Signed integers have no such rule and are refused."""
    from skimage import img_as_float
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.unsignedinteger):
        return img_as_float(array).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.signedinteger):
        raise ShapeError(f"{name} holds signed integers ({array.dtype}), which have no "
                         "scaling rule: pass unsigned integers (scaled to [0, 1]) or floats "
                         "(taken as they are)")
    raise ShapeError(f"{name} must hold numbers, not {array.dtype}")


def fit_channels(array: np.ndarray, channels: int, name: str = "the image") -> np.ndarray:
    """H x W x C as the net's channels, one rule for arrays and files: an
    alpha band is dropped, grey is repeated for a colour net, colour is
    turned to grey (skimage's rgb2gray luminance, as a file read with
    as_gray) for a one-channel net."""
    from skimage.color import rgb2gray
    if array.shape[2] == 4 and channels != 4:
        array = array[:, :, :3]
    if array.shape[2] == 1 and channels == 3:
        array = np.tile(array, (1, 1, 3))
    elif array.shape[2] == 3 and channels == 1:
        array = rgb2gray(array).astype(np.float32)[:, :, np.newaxis]
    if array.shape[2] != channels:
        raise ShapeError(f"{name} has {array.shape[2]} channels, the net takes {channels}")
    return array


def as_image(image: ImageLike, channels: int, bgr: bool = False) -> np.ndarray:
    """A path, H x W or H x W x C array as float32 H x W x C, RGB.

    Files and arrays follow the same rules: ``scaled`` for numbers,
    ``fit_channels`` for channels. Arrays are taken as RGB, like a decoded
    file; ``bgr=True`` says an array holds BGR (OpenCV's order) and turns
    it to RGB first. The input array is never modified.
    """
    if isinstance(image, (str, os.PathLike)):
        return fit_channels(load_image(image, color=channels != 1), channels,
                            repr(os.fspath(image)))
    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ShapeError(f"an image must be H x W or H x W x C, not shape {array.shape}")
    check_image_memory(array.shape[0], array.shape[1], max(channels, array.shape[-1]
                                                          if array.ndim == 3 else 1))
    array = scaled(array)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if bgr:
        if array.shape[2] not in (3, 4):
            raise ShapeError(f"bgr=True needs 3 or 4 channels, the image has {array.shape[2]}")
        array = np.concatenate([array[:, :, 2::-1], array[:, :, 3:]], axis=2)
    array = fit_channels(array, channels)
    check_finite(array, "the image")
    return array


# What a mean file may be, said by every refusal of one.
MEAN_FORMATS = ("give a .npy array or Caffe's .binaryproto (compute_image_mean's output), or "
                "per-channel values")


def load_mean(path) -> np.ndarray:
    """A mean file: numpy's .npy (C x H x W, as pycaffe's examples save
    ilsvrc_2012_mean.npy) or Caffe's .binaryproto (compute_image_mean's
    output: a 1 x C x H x W BlobProto, read in C++ with every size bounded
    first), as a float array of C x H x W (or C values). Only a regular file
    is read; a .npy's header is checked before its array is allocated."""
    name = checked_name(path, "mean")
    if name.lower().endswith(".binaryproto"):
        open_regular_file(name, "mean").close()  # refused before the core opens it
        try:
            mean = _core.read_mean_file(name)
        except ParseError as error:  # a caffemodel parses as a BlobProto of no shape
            raise ParseError(f"{error}: not a mean file (a caffemodel?); {MEAN_FORMATS}") \
                from None
        if mean.ndim == 4 and mean.shape[0] == 1:
            mean = mean[0]
        return mean
    magic = np.lib.format.MAGIC_PREFIX
    with open_regular_file(name, "mean") as file:
        if file.read(len(magic)) != magic:  # a caffemodel, an image: not numpy's to judge
            raise FileError(f"mean {name!r} is not a mean file (a caffemodel? an image?): "
                            f"{MEAN_FORMATS}")
    return read_npy(name, "mean")


def as_mean(mean: MeanLike, shape: Tuple[int, int, int]) -> Optional[np.ndarray]:
    """Per-channel values (C,) or a mean image (C x H x W, e.g. a .npy path),
    fitted to `shape` (C, H, W) as Transformer.set_mean does."""
    if mean is None:
        return None
    if isinstance(mean, (str, os.PathLike)):
        mean = load_mean(mean)
    if np.iscomplexobj(mean):
        raise ShapeError("the mean holds complex numbers: give real values")
    mean = np.asarray(mean, dtype=np.float64)
    if mean.size == 0:
        raise ShapeError(f"mean of shape {mean.shape} holds no values")
    check_finite(mean, "the mean")
    if mean.ndim == 1:
        if mean.shape[0] != shape[0]:
            raise ShapeError(f"mean has {mean.shape[0]} values, the image {shape[0]} channels")
        return mean[:, np.newaxis, np.newaxis]
    if mean.ndim == 2:
        mean = mean[np.newaxis]
    if mean.ndim != 3 or mean.shape[0] != shape[0]:
        raise ShapeError(f"mean of shape {mean.shape} does not fit an image of {shape}")
    if mean.shape != shape and mean.min() == mean.max():
        return np.full(shape, mean.min())
    if mean.shape != shape:
        m_min, m_max = mean.min(), mean.max()
        normal = (mean - m_min) / (m_max - m_min)
        mean = resize_image(normal.transpose((1, 2, 0)), shape[1:]).transpose((2, 0, 1)) * \
            (m_max - m_min) + m_min
    return mean


def _number(value, name: str) -> Optional[float]:
    """A scale as a float (None: no scaling)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ShapeError(f"{name} must be a number, not {value!r}")
    return float(value)


def _order(channel_swap) -> Optional[Tuple[int, ...]]:
    """channel_swap as a tuple of ints that is an order of its length."""
    if channel_swap is None:
        return None
    try:
        order = tuple(int(c) for c in channel_swap)
        if sorted(order) != list(range(len(order))) or \
                any(int(c) != c for c in channel_swap):
            raise ValueError
    except (TypeError, ValueError):
        raise ShapeError(f"channel_swap must be an order of channels such as (2, 1, 0), not "
                         f"{channel_swap!r}") from None
    return order


@dataclass(frozen=True, eq=False)
class Preprocess:
    """How an image becomes the net's input: pycaffe's Transformer, whose
    order it keeps: resize (only if `size`), transpose, channel swap, raw
    scale, mean, input scale.

    `mean`: per-channel values (C,), a mean image (C x H x W) or a mean
    file (.npy or .binaryproto, read when applied, fitted to the image as
    Transformer.set_mean does). `channel_swap`: the order of the channels,
    e.g. (2, 1, 0) for RGB images into a BGR net. `raw_scale` multiplies
    the [0, 1] image, `input_scale` the image less its mean. `size` (H, W)
    resizes first. `bgr`: array images hold BGR (OpenCV's order), turned
    to RGB first so that they go through the same steps as a loaded file.
    Checked once when made; plain values, so it pickles (Dask sends it)."""
    mean: MeanLike = None
    channel_swap: Optional[Tuple[int, ...]] = None
    raw_scale: Optional[float] = None
    input_scale: Optional[float] = None
    size: Optional[Tuple[int, int]] = None
    bgr: bool = False

    def __post_init__(self) -> None:
        settle = functools.partial(object.__setattr__, self)  # frozen: set once, here
        if self.mean is not None and not isinstance(self.mean, (str, os.PathLike)):
            mean = np.asarray(self.mean, dtype=np.float64)
            if mean.ndim not in (1, 2, 3) or mean.size == 0:
                raise ShapeError(f"mean must be per-channel values, a C x H x W image or a "
                                 f"file, not an array of shape {mean.shape}")
            settle("mean", tuple(mean.tolist()) if mean.ndim == 1 else mean)
        settle("channel_swap", _order(self.channel_swap))
        settle("raw_scale", _number(self.raw_scale, "raw_scale"))
        settle("input_scale", _number(self.input_scale, "input_scale"))
        if self.size is not None:
            settle("size", check_size(self.size))
        if not isinstance(self.bgr, (bool, np.bool_)):
            raise ShapeError(f"bgr must be True or False, not {self.bgr!r}")
        settle("bgr", bool(self.bgr))

    def __call__(self, image: ImageLike, channels: int) -> Tuple[np.ndarray, np.ndarray]:
        """(the H x W x C image as loaded, the C x H x W float32 net input)."""
        size = self.size
        if size is not None:
            check_image_memory(size[0], size[1], channels)
        img = as_image(image, channels, self.bgr)
        if size is not None:
            img = resize_image(img, size)
        x = img.transpose((2, 0, 1))
        if self.channel_swap is not None:
            if len(self.channel_swap) != channels:
                raise ShapeError(f"channel_swap {self.channel_swap} is not an order of "
                                 f"{channels} channels")
            x = x[list(self.channel_swap), :, :]
        x = np.array(x, dtype=np.float32)  # a copy: the steps below work in place
        if self.raw_scale is not None:
            x *= self.raw_scale
        m = as_mean(self.mean, x.shape)
        self._check_range(float(img.max(initial=0.0)), m)
        if m is not None:
            x -= m
        if self.input_scale is not None:
            x *= self.input_scale
        return img, x

    apply = __call__

    def _check_range(self, top: float, mean: Optional[np.ndarray]) -> None:
        """A PreprocessingWarning where the image's range (its largest
        value `top`, as loaded) does not fit the settings. The text names
        only the settings, so Python's warning filter says it once, not
        once per image."""
        scale = 1.0 if self.raw_scale is None else self.raw_scale
        if mean is not None and float(mean.max(initial=0.0)) > 2 and top <= 1 and scale <= 1:
            warnings.warn("the mean is on a 0..255 scale but the image is in 0..1 and "
                          "raw_scale does not scale it up: pass raw_scale=255 (--raw-scale "
                          "255), or a mean for 0..1 values", PreprocessingWarning,
                          stacklevel=4)
        if top > 1.5 and scale > 1:
            warnings.warn(f"the image holds values above 1 (a 0..255 float image?) and "
                          f"raw_scale={scale:g} scales them past the net's range: give float "
                          "images in 0..1 (divide by 255), or leave out raw_scale",
                          PreprocessingWarning, stacklevel=4)

    @classmethod
    def preset(cls, name: str, *, resize: bool = False, **settings: Any) -> "Preprocess":
        """The preprocessing a model zoo family was trained with: "caffenet"
        (and AlexNet), "vgg", "resnet", "googlenet" or "inception"; each
        one's values and source are in its function's docstring in
        ``surgery.presets``. `resize` also resizes each image to the
        classifier's input size (one cell: a dense map wants the image at its
        own size). `settings` (mean=, raw_scale=, ...) replace the preset's."""
        from .presets import PRESETS
        if name not in PRESETS:
            raise ValueError(f"no preset {name!r}: give one of {', '.join(PRESETS)}")
        values = PRESETS[name]()
        if not resize:
            values.pop("size")
        return cls(**{**values, **settings})

    def invert(self, x: np.ndarray) -> np.ndarray:
        """A net input (C x H x W, or 1 x C x H x W) back as an H x W x C
        image, float32 (pycaffe's deprocess): input scale, mean and raw scale
        undone, channels put back in the image's order. A resize (`size`) is
        not undone: the image keeps the net's size. `x` is not modified."""
        x = np.array(x, dtype=np.float32)
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3:
            raise ShapeError(f"a net input to invert must be C x H x W, not shape {x.shape}")
        if self.input_scale is not None:
            x /= self.input_scale
        m = as_mean(self.mean, x.shape)
        if m is not None:
            x += m
        if self.raw_scale is not None:
            x /= self.raw_scale
        if self.channel_swap is not None:
            if len(self.channel_swap) != x.shape[0]:
                raise ShapeError(f"channel_swap {self.channel_swap} is not an order of "
                                 f"{x.shape[0]} channels")
            x = x[np.argsort(self.channel_swap), :, :]
        return x.transpose((1, 2, 0))
