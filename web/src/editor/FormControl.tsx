// How one component looks on the canvas: what a person filling the form
// would see (the preview's renderer), inert: the canvas item around it is
// what takes focus and clicks. A section's children are canvas items of
// their own, drawn after it by the canvas.
import type { Component } from "@coform/sdk";
import { Control } from "../form/Control";
import type { TypeInfo } from "../schema";

export function FormControl(props: { component: Component; info?: TypeInfo }) {
  return <Control component={props.component} info={props.info} interactive={false} idPrefix="canvas-" />;
}
